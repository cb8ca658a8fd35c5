// Compressed sparse weights (dtype F32_SPARSE): which elements of a matrix W [O, I] are stored, as
// one bit per element, and the stored values packed row after row. Made for pruned linears: at 50%
// zeros it takes 2.125 bytes per element instead of 4 (0.53x), a sparse x vector product reads
// that much less memory, and the same layout holds unstructured and N:M (2:4, 4:8) patterns (docs/formats.md).
//
// The blob (one buffer, little-endian, each section starting at a multiple of 64 bytes):
//   header, 64 bytes:
//     char magic[8] = "SECSPBM1"; u32 version = 1; u32 value_type = 0 (f32);
//     u64 rows (O); u64 cols (I); u64 nnz (values stored); u64 mask_stride (bytes per row: cols
//     rounded up to a multiple of 64 bits, / 8); u32 nm_n, nm_m (N:M pattern every row satisfies --
//     at most nm_n stored in each aligned group of nm_m columns; 0, 0 when none was found); 8 bytes 0
//   row_offsets: u64[rows + 1]   index of each row's first value; row_offsets[rows] = nnz
//   masks: rows x mask_stride bytes; element (r, c) is stored iff bit (c % 8) of byte c / 8 of row
//     r's mask is 1; bits past cols are 0
//   values: nnz f32 in row-major order of the stored elements, then 64 zero bytes (so that a vector
//     load may run past the last value)
// An element is "zero" (not stored) only when its bits are all 0 (+0.0): -0.0 and NaN are stored,
// so compress / decompress is bit-exact.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace sec {

struct SparseView {
  int64_t rows = 0, cols = 0, nnz = 0, mask_stride = 0;
  int nm_n = 0, nm_m = 0;
  const uint64_t* row_off = nullptr;  // rows + 1
  const uint8_t* mask = nullptr;      // rows * mask_stride
  const float* values = nullptr;      // nnz (+ 16 zero floats)
  const uint8_t* row_mask(int64_t r) const { return mask + r * mask_stride; }
};

// The view of an F32_SPARSE tensor (asserts its dtype; the blob was validated when it was made).
SparseView sparse_view(const Tensor& t);

size_t sparse_blob_bytes(int64_t rows, int64_t cols, int64_t nnz);
constexpr size_t kSparseHeaderBytes = 64;
// The nnz field of a blob's header (kSparseHeaderBytes readable at `blob`; nothing else is checked).
uint64_t sparse_header_nnz(const void* blob);
// Bytes of the blob compress_sparse(t) would make (t f32, 2-D; for an F32_SPARSE t its own size),
// counted without building it.
size_t sparse_stored_bytes(const Tensor& t);

// dense: an f32 (or f16/bf16, converted first) 2-D tensor [O, I]. format: DType::F32_SPARSE.
Tensor compress_sparse(const Tensor& dense, DType format = DType::F32_SPARSE);
// The dense f32 tensor an F32_SPARSE tensor stands for (bit-exact inverse of compress_sparse).
Tensor decompress_sparse(const Tensor& sparse);

// For readers of files holding a blob: checks the header against `shape`, every offset and count
// (row offsets increasing, each row's popcount equal to its offset difference, no mask bits past
// cols) before anything is read through them; throws Error naming `what` otherwise.
void validate_sparse_blob(const void* blob, size_t bytes, const Shape& shape, const std::string& what);

// "2:4" / "4:8" / "" (unstructured): the N:M pattern recorded in the blob.
std::string sparse_pattern(const Tensor& t);

}  // namespace sec
