// Exists so that CMake has a target to build cmake/parley_pch.h into.
