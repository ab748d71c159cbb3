"""`micropython` of a simulated board (MicroPython 1.11 modmicropython.c).

schedule(fn, arg) queues fn(arg) (4 entries, RuntimeError "schedule stack full" beyond) for the
board's main task, which runs it at its next blocking call (sleep, socket wait, ...) or while
blocked there, or at the REPL once main.py has ended.
"""

from ..board import unsupported
from . import new_module


def make(session):
    locks = [0]

    def const(value):
        return value

    def schedule(func, arg):
        return session.schedule(func, arg)

    def alloc_emergency_exception_buf(size):
        return None

    def mem_info(*verbose):
        gc = session.emulated_module("gc")
        used = gc.mem_alloc()
        free = gc.mem_free()
        session.console_write(
            "stack: 736 out of 11264\n"
            "GC: total: %d, used: %d, free: %d\n"
            " No. of 1-blocks: %d, 2-blocks: %d, max blk sz: %d, max free sz: %d\n"
            % (used + free, used, free, used // 64, used // 256, 264, free // 16)
        )

    def qstr_info(*verbose):
        session.console_write(
            "qstr pool: n_pool=1, n_qstr=%d, n_str_data_bytes=%d, n_total_bytes=%d\n"
            % (40, 400, 1200)
        )

    def stack_use():
        return 736

    def opt_level(*args):
        return None if args else 0

    def heap_lock():
        locks[0] += 1

    def heap_unlock():
        locks[0] = max(0, locks[0] - 1)
        return locks[0]

    def kbd_intr(char):
        return None

    def native(func):
        return func

    def viper(func):
        raise unsupported("@micropython.viper (typed integer semantics)")

    def asm_xtensa(func):
        raise unsupported("@micropython.asm_xtensa")

    return new_module(
        "micropython",
        {
            "const": const,
            "schedule": schedule,
            "alloc_emergency_exception_buf": alloc_emergency_exception_buf,
            "mem_info": mem_info,
            "qstr_info": qstr_info,
            "stack_use": stack_use,
            "opt_level": opt_level,
            "heap_lock": heap_lock,
            "heap_unlock": heap_unlock,
            "kbd_intr": kbd_intr,
            "native": native,
            "viper": viper,
            "asm_xtensa": asm_xtensa,
        },
    )
