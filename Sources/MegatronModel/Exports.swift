// The model's API speaks the Backend seam's types (Backend, DType, Tensor, Activation, StoredTensor): `import
// MegatronModel` brings them along. The model sees that protocol only, never a concrete backend.
@_exported import MegatronBackend
