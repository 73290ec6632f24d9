"""Find the file offsets of named function symbols in an ELF64 file (a .so or an executable).

bcc's own resolver fails on executables reached through /proc/<pid>/map_files, so the agent
resolves symbols itself, reading only the headers and symbol/string tables.
"""
from __future__ import annotations

import struct
from typing import BinaryIO

SHT_SYMTAB, SHT_DYNSYM, PT_LOAD, STT_FUNC = 2, 11, 1, 2
MAX_TABLE = 256 * 1024 * 1024  # refuse absurd tables (a malicious file must not exhaust memory)


class ElfError(ValueError):
    """The file is not a little-endian ELF64 file this reader understands."""


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    if size < 0 or size > MAX_TABLE:
        raise ElfError(f"table of {size} bytes is out of bounds")
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise ElfError("truncated ELF file")
    return data


def function_offsets(f: BinaryIO, wanted: set[str]) -> dict[str, int]:
    """{symbol: file offset} for the defined functions in ``wanted`` that the file has."""
    ident = _read(f, 0, 64)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        raise ElfError("not a little-endian ELF64 file")
    (_t, _m, _v, _entry, phoff, shoff, _fl, _eh, phentsize, phnum, shentsize, shnum,
     _shstrndx) = struct.unpack_from("<HHIQQQIHHHHHH", ident, 16)
    if shentsize != 64 or phentsize != 56 or shnum > 65535 or phnum > 65535:
        raise ElfError("unexpected ELF header sizes")
    phdrs = _read(f, phoff, phnum * 56)
    loads = []
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _pa, p_filesz, _memsz, _align = struct.unpack_from("<IIQQQQQQ", phdrs, i * 56)
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_filesz, p_offset))
    shdrs = _read(f, shoff, shnum * 64)
    sections = [struct.unpack_from("<IIQQQQIIQQ", shdrs, i * 64) for i in range(shnum)]
    found: dict[str, int] = {}
    for kind in (SHT_DYNSYM, SHT_SYMTAB):
        for _name, sh_type, _fl, _addr, sh_offset, sh_size, sh_link, _info, _al, sh_entsize in sections:
            if sh_type != kind or sh_entsize != 24 or sh_link >= shnum:
                continue
            strtab_off, strtab_size = sections[sh_link][4], sections[sh_link][5]
            strtab = _read(f, strtab_off, strtab_size)
            syms = _read(f, sh_offset, sh_size)
            for j in range(0, len(syms) - 23, 24):
                st_name, st_info, _other, st_shndx, st_value, _size = struct.unpack_from("<IBBHQQ", syms, j)
                if st_shndx == 0 or st_info & 0xF != STT_FUNC or st_value == 0:
                    continue
                end = strtab.find(b"\0", st_name)
                name = strtab[st_name:end if end >= 0 else None].decode("latin-1")
                if name in wanted and name not in found:
                    for vaddr, filesz, off in loads:
                        if vaddr <= st_value < vaddr + filesz:
                            found[name] = st_value - vaddr + off
                            break
        if len(found) == len(wanted):
            break
    return found
