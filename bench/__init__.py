"""Benchmarks of gk against its peers, run together by ``python -m bench`` (see
:mod:`bench.__main__`).

Nothing is imported here: the entry point fixes the BLAS threads before NumPy loads.
"""
