import CDNNL

/// Activations and LayerNorm through oneDNN's JIT kernels, which use the CPU's widest vectors (AVX-512 where it
/// has them; our own Swift kernels are built for baseline x86-64). Each core runs its share of rows
/// single-threaded, as for the products. Every function returns false when oneDNN has no fast kernel for it, and
/// the caller then uses its own.
extension OneDNN {
    /// x = act(x) in place over `count` elements.
    /// oneDNN's eltwise algorithm for an activation (also the products' post-op: `multiply(…, activation:)`).
    static func algorithm(_ activation: Activation) -> dnnl_alg_kind_t {
        switch activation {
        case .gelu: dnnl_eltwise_gelu_erf
        case .geluTanh: dnnl_eltwise_gelu_tanh
        case .relu: dnnl_eltwise_relu
        case .tanh: dnnl_eltwise_tanh
        }
    }

    func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ activation: Activation) -> Bool {
        let algorithm = Self.algorithm(activation)
        // Equal shares in multiples of 16 floats (whole vectors): at most two distinct sizes to cache.
        let share = ((count + Parallel.cores - 1) / Parallel.cores + 15) / 16 * 16
        let parts = (count + share - 1) / max(share, 1)
        let failures = ManagedAtomicFlag()
        Parallel.forEach(parts, minimumPerThread: 1) { range in
            for part in range {
                let start = part * share, n = min(share, count - start)
                let data = Self.plain(1, n, dnnl_f32)
                let primitive = self.primitive(.eltwise(algorithm: algorithm.rawValue, count: n)) { attr in
                    var desc = dnnl_eltwise_desc_t(), md = data
                    var pd: dnnl_primitive_desc_t?
                    guard dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, algorithm, &md, 0, 0) == dnnl_success,
                          dnnl_primitive_desc_create(&pd, &desc, attr, self.engine, nil) == dnnl_success else { return nil }
                    return pd
                }
                let pointer = UnsafeMutableRawPointer(x + start)
                guard let primitive, self.execute(primitive, [(DNNL_ARG_SRC, data, pointer), (DNNL_ARG_DST, data, pointer)]) else {
                    failures.set()
                    continue
                }
            }
        }
        return !failures.isSet
    }

    /// out (rows, width) = LayerNorm(x) · gamma + beta, each row normalised over its `width` values (biased
    /// variance, `epsilon` inside the square root, as PyTorch).
    func layerNorm(_ x: UnsafePointer<Float>, rows: Int, width: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                   epsilon: Float, into out: UnsafeMutablePointer<Float>) -> Bool {
        let share = (rows + Parallel.cores - 1) / Parallel.cores
        let parts = (rows + share - 1) / max(share, 1)
        let vector = Self.plain(1, width, dnnl_f32)
        let failures = ManagedAtomicFlag()
        Parallel.forEach(parts, minimumPerThread: 1) { range in
            for part in range {
                let start = part * share, n = min(share, rows - start)
                let data = Self.plain(n, width, dnnl_f32)
                let primitive = self.primitive(.layerNorm(rows: n, width: width, epsilon: epsilon)) { attr in
                    var desc = dnnl_layer_normalization_desc_t(), md = data
                    var pd: dnnl_primitive_desc_t?
                    let flags = dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
                    guard dnnl_layer_normalization_forward_desc_init(&desc, dnnl_forward_inference, &md, nil, epsilon, flags) == dnnl_success,
                          dnnl_primitive_desc_create(&pd, &desc, attr, self.engine, nil) == dnnl_success else { return nil }
                    return pd
                }
                guard let primitive,
                      self.execute(primitive, [(DNNL_ARG_SRC, data, UnsafeMutableRawPointer(mutating: x + start * width)),
                                               (DNNL_ARG_DST, data, UnsafeMutableRawPointer(out + start * width)),
                                               (DNNL_ARG_SCALE, vector, UnsafeMutableRawPointer(mutating: gamma)),
                                               (DNNL_ARG_SHIFT, vector, UnsafeMutableRawPointer(mutating: beta))]) else {
                    failures.set()
                    continue
                }
            }
        }
        return !failures.isSet
    }
}
