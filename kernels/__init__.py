"""Triton kernels, one file per fused job; imported as `srpose_fast.kernels`.

Import this package only when a Triton backend is asked for: `import srpose_fast` never needs Triton.
"""
