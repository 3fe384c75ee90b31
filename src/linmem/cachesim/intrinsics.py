"""Two processor instructions the kernels want and numba does not name.

``prefetch(array, i)``: ``__builtin_prefetch(&array[i])``, a hint to load
the cache line of ``array[i]`` now because it will be needed soon; it never
faults, whatever ``i`` is. ``popcount(x)``: the number of bits set in the
uint64 ``x`` (one POPCNT instruction). With ``NUMBA_DISABLE_JIT=1`` both are
plain Python, so the kernels still run as Python (and numpy's warnings of
uint64 overflow, which the hashes want, are silenced).
"""

from __future__ import annotations

import warnings

import numba
from numba.core import cgutils, types
from numba.extending import intrinsic

if numba.config.DISABLE_JIT:
    # compiled, uint64 arithmetic wraps silently (the hashes rely on it);
    # numpy wraps too, but warns
    warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)

    def prefetch(array, index):
        """A no-op when the kernels run as Python."""

    def popcount(x):
        return bin(int(x)).count("1")
else:
    @intrinsic
    def prefetch(typingctx, array, index):
        def codegen(context, builder, signature, args):
            from llvmlite import ir
            arytype = signature.args[0]
            ary = context.make_array(arytype)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, arytype, ary, [args[1]],
                                           wraparound=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0")
            # for writing (1): the policy updates what it looks up; keep in
            # every cache level (3); data, not instructions (1)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
            return context.get_dummy_value()
        return types.void(array, index), codegen

    @intrinsic
    def popcount(typingctx, x):
        if x != types.uint64:
            return None

        def codegen(context, builder, signature, args):
            from llvmlite import ir
            i64 = ir.IntType(64)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64")
            return builder.call(fn, [args[0]])
        return types.uint64(types.uint64), codegen
