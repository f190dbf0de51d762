# Writes OUT, a C file holding the bytes of IN as NAME (unsigned char[])
# and NAME_len. Used for the guest runtime's Wasm and for texts wfp-aot writes.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR bytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}" "/* generated at build time from ${NAME}'s source: do not edit */\n#include <stddef.h>\nconst unsigned char ${NAME}[] = {\n${body}0x00\n};\nconst size_t ${NAME}_len = ${bytes};\n")
