// Placeholder so the library has a CPU translation unit until kernels/cpu lands.
namespace loom::kernels::cpu { int kernels_placeholder() { return 0; } }
