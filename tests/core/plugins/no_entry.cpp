// A shared library with a manifest but no entry point: the host reports "missing entry point".
extern "C" __attribute__((visibility("default"))) int some_other_symbol() { return 42; }
