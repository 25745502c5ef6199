// Compiles tests/precompiled.h once (see tests/CMakeLists.txt); no code of its own.
