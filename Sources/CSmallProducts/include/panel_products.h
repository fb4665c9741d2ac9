#ifndef MEGATRON_PANEL_PRODUCTS_H
#define MEGATRON_PANEL_PRODUCTS_H

#include <stdbool.h>
#include <stdint.h>

/// The most rows the panel kernels take.
#define MB_PANEL_ROWS 32

/// Whether this CPU runs the AVX-512 panel kernel below (checked at run time: the library is built for any x86-64).
bool mb_panel_products_available(void);

/// y[r, j] = sum_i x[r, i] * W[i, j] (+ bias[j]) (+ y[r, j] when accumulate), for rows r < m (m <= MB_PANEL_ROWS)
/// and columns j < columns, on weights packed in panels of 64 columns: panel p (columns 64p ..< 64p + 64) starts at
/// panels + p * panel_stride floats and holds W[i, 64p + c] at i * 64 + c (oneDNN's BA16a64b layout for FP32,
/// 64-byte aligned; columns past `columns` are padding and never written). x (m, k) row-major, y rows `ldy` floats
/// apart. Every weight is read once, front to back, prefetched ahead: few-row products run near the memory's read
/// bandwidth. Requires mb_panel_products_available().
void mb_panel_product_f32(const float *x, int m, int k, const float *panels, long panel_stride, int columns,
                          const float *bias, bool accumulate, float *y, long ldy);

/// Whether this CPU runs the BF16 panel kernel below (AVX-512 with AVX512_BF16).
bool mb_panel_products_bf16_available(void);

/// As mb_panel_product_f32 for BF16 weights and inputs, FP32 accumulation (vdpbf16ps, as oneDNN's AVX512_BF16
/// kernel): x (m, k) BF16 bits row-major, k even; W in panels of 64 columns, panel p at panels + p * panel_stride
/// elements, W[i, 64p + c] at (i / 2) * 128 + c * 2 + i % 2 (oneDNN's BA16a64b2a layout, 64-byte aligned, K padded
/// with zeros). Requires mb_panel_products_bf16_available().
void mb_panel_product_bf16(const uint16_t *x, int m, int k, const uint16_t *panels, long panel_stride, int columns,
                           const float *bias, bool accumulate, float *y, long ldy);

/// As mb_panel_product_bf16 on the same BF16 panels, but with FP32 inputs x (m, k) and FP32 products: each weight
/// widened to FP32 in registers, then FMAs (for CPUs whose BF16 dot products are slower than FP32 FMAs). Requires
/// mb_panel_products_available().
void mb_panel_product_bf16_widened(const float *x, int m, int k, const uint16_t *panels, long panel_stride,
                                   int columns, const float *bias, bool accumulate, float *y, long ldy);

/// Whether this CPU runs the int8 panel kernel below (AVX-512 with VNNI).
bool mb_panel_products_int8_available(void);

/// y[r, j] = sum_i x[r, i] * W[i, j] in int32 (exact), for rows r < m (m <= MB_PANEL_ROWS) and columns j < columns:
/// x (m, k) u8 row-major, k a multiple of 4; W s8 in panels of 64 columns, panel p at panels + p * panel_stride bytes,
/// W[i, 64p + c] at (i / 4) * 256 + c * 4 + i % 4 (oneDNN's BA16a64b4a layout for VNNI, 64-byte aligned, K padded
/// with zeros); y rows `ldy` int32s apart. Each weight read once, prefetched ahead. Requires
/// mb_panel_products_int8_available().
void mb_panel_product_u8s8(const uint8_t *x, int m, int k, const int8_t *panels, long panel_stride, int columns,
                           int32_t *y, long ldy);

/// Whether this CPU runs the AVX2 int8 panel kernel below.
bool mb_panel_products_int8_avx2_available(void);

/// The int8 epilogue (`mb_int8_epilogue` of CQuantizedRows, at vector level `level`) for a whole product: per row of x
/// its scale and zero point (m of each), per column the weights' scale and level sum (`columns` of each), the bias
/// (or NULL), and y (m, columns), rows `ldy` floats apart.
typedef struct {
    int level;
    const float *scale;
    const int32_t *zero;
    const float *wscale;
    const int32_t *colsum;
    const float *bias;
    bool accumulate, gelu;
    float *y;
    int ldy;
} mb_int8_finish;

/// As mb_panel_product_u8s8, on the same panels (BA16a64b4a, 64-byte aligned, K padded with zeros), for CPUs without
/// VNNI: any number of rows m and any k (a last partial quad of x is read without going past its row). With `finish`,
/// each tile's sums go through its epilogue straight into its y (no buffer of sums; `sums` unused); without, the int32
/// sums go to `sums`, rows `ldy` int32s apart. Each quad's products are summed in pairs in 16 bits first
/// (vpmaddubsw), so a sum is exact only while x[r, i] · W[i, j] + x[r, i + 1] · W[i + 1, j] stays within ±32,767 for
/// every even i (inputs up to 191 and weights within ±85 do). Requires mb_panel_products_int8_avx2_available().
void mb_panel_product_u8s8_avx2(const uint8_t *x, int m, int k, const int8_t *panels, long panel_stride, int columns,
                                const mb_int8_finish *finish, int32_t *sums, long ldy);

#endif
