// The CUDA backend implements the Backend seam; its API speaks the seam's types.
@_exported import MegatronBackend
