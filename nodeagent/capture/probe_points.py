"""Where an entry uprobe costs one trap instead of two.

On x86-64 the kernel *emulates* a probed ``call``, ``jmp``, ``jcc``, ``nop`` or ``push``; any other probed
instruction is executed out of line with a single step, which costs a second trap per hit (about
as much again as the first on a VM). OpenSSL's ``SSL_write_ex`` starts with ``sub $8,%rsp`` and
then a ``call``; ``SSL_write`` sets up its stack protector, then tests ``num`` and branches. An
entry probe that only reads the argument registers may move past leading instructions that leave
those registers and the control flow alone, to the first emulated one.

Return probes must stay at the function's first byte: the kernel takes the return address from
the stack pointer at the probe. So must an entry probe that shares its function with one (the
two share a single trap there).
"""
from __future__ import annotations

import platform

MAX_SKIP = 32  # bytes of prologue an entry probe may move past

# Instructions that change neither the argument registers (rdi rsi rdx rcx r8 r9) nor control flow.
_SKIPPABLE: tuple[tuple[bytes, int], ...] = (
    (b"\xf3\x0f\x1e\xfa", 4),          # endbr64
    (b"\x48\x83\xec", 4),              # sub $imm8, %rsp
    (b"\x48\x81\xec", 7),              # sub $imm32, %rsp
    (b"\x48\x89\xe5", 3),              # mov %rsp, %rbp
    (b"\x64\x48\x8b\x04\x25", 9),      # mov %fs:disp32, %rax (the stack protector's canary)
    (b"\x48\x89\x44\x24", 5),          # mov %rax, disp8(%rsp)
    (b"\x31\xc0", 2),                  # xor %eax, %eax
    (b"\x85\xd2", 2),                  # test %edx, %edx
)


def _skippable(code: bytes, i: int) -> int:
    """Length of the skippable instruction at ``code[i]``, or 0."""
    for prefix, length in _SKIPPABLE:
        if code.startswith(prefix, i) and i + length <= len(code):
            return length
    return 0


def _emulated(code: bytes, i: int) -> bool:
    """Does the kernel emulate the instruction at ``code[i]`` (no single step)?"""
    if i >= len(code):
        return False
    op = code[i]
    if op in (0xE8, 0xE9):             # call / jmp rel32
        return i + 5 <= len(code)
    if op == 0xEB or 0x70 <= op <= 0x7F:  # jmp rel8, jcc rel8
        return i + 2 <= len(code)
    if op == 0x0F and i + 1 < len(code) and 0x80 <= code[i + 1] <= 0x8F:  # jcc rel32
        return i + 6 <= len(code)
    if op == 0x90 or 0x50 <= op <= 0x57:  # nop, push %reg
        return True
    return op == 0x41 and i + 1 < len(code) and 0x50 <= code[i + 1] <= 0x57  # push %r8..%r15


def entry_probe_offset(code: bytes, machine: str | None = None) -> int:
    """Bytes past a function's start at which to put its entry probe (0: at the start).

    ``code`` is the function's first bytes. The answer is the first emulated instruction reached
    through skippable ones only; 0 when the start is already emulated, when something else comes
    first, or off x86-64.
    """
    if (machine or platform.machine()) not in ("x86_64", "AMD64"):
        return 0
    i = 0
    while i < MAX_SKIP:
        if _emulated(code, i):
            return i
        n = _skippable(code, i)
        if not n:
            return 0
        i += n
    return 0
