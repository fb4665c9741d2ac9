// The compute types (Backend, CPUBackend, Tensor, DType, Activation) are part of this library's API:
// `import MegatronBERT` brings them along.
@_exported import MegatronCompute
