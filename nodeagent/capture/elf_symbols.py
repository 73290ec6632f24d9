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
    """{symbol: file offset} for the defined functions in ``wanted`` that the file has.

    The dynamic symbol table is read first; ``.symtab`` only when it has none of them (a static binary).
    """
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
            for name in wanted - found.keys():
                value = _first_function(syms, strtab, name.encode("latin-1"))
                if value is None:
                    continue
                for vaddr, filesz, off in loads:
                    if vaddr <= value < vaddr + filesz:
                        found[name] = value - vaddr + off
                        break
        if found:  # a library's API is exported together: the (much larger) .symtab adds nothing
            break
    return found


def _first_function(syms: bytes, strtab: bytes, name: bytes) -> int | None:
    """st_value of the first defined function symbol named ``name`` in a table of Elf64_Sym.

    Searches bytes rather than decoding every symbol (node has ~100k): each place the string table
    holds ``name\0`` (also as the tail of a longer name, which linkers share) is a possible st_name,
    looked for in the table at symbol-aligned positions.
    """
    best: tuple[int, int] | None = None  # (index in the table, st_value)
    needle = name + b"\0"
    pos = strtab.find(needle)
    while pos >= 0:
        packed = struct.pack("<I", pos)
        j = syms.find(packed)
        while j >= 0 and (best is None or j < best[0]):
            if j % 24 == 0 and j + 24 <= len(syms):
                _n, st_info, _other, st_shndx, st_value, _size = struct.unpack_from("<IBBHQQ", syms, j)
                if st_shndx != 0 and st_info & 0xF == STT_FUNC and st_value != 0:
                    best = (j, st_value)
                    break
            j = syms.find(packed, j + 1)
        pos = strtab.find(needle, pos + 1)
    return best[1] if best else None
