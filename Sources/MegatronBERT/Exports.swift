// `import MegatronBERT` is the whole library: the model, its heads and tasks (MegatronModel), the Backend seam
// (MegatronBackend), every backend (MegatronCPU, MegatronCUDA) and `Device`, which opens one.
@_exported import MegatronBackend
@_exported import MegatronCPU
@_exported import MegatronCUDA
@_exported import MegatronModel
@_exported import MegatronTraining
