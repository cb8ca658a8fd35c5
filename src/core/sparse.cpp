#include "core/sparse.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/threads.h"

namespace sec {

namespace {

constexpr char kMagic[8] = {'S', 'E', 'C', 'S', 'P', 'B', 'M', '1'};
constexpr size_t kHeader = 64;

struct Header {
  char magic[8];
  uint32_t version, value_type;
  uint64_t rows, cols, nnz, mask_stride;
  uint32_t nm_n, nm_m;
  uint64_t reserved;
};
static_assert(sizeof(Header) == kHeader);

size_t align64(size_t n) { return (n + 63) / 64 * 64; }
int64_t mask_stride_for(int64_t cols) { return (cols + 63) / 64 * 8; }

struct Layout {
  size_t off_rows, off_mask, off_values, total;
};

Layout layout(int64_t rows, int64_t cols, int64_t nnz) {
  Layout l;
  l.off_rows = kHeader;
  l.off_mask = align64(l.off_rows + size_t(rows + 1) * 8);
  l.off_values = align64(l.off_mask + size_t(rows) * size_t(mask_stride_for(cols)));
  l.total = align64(l.off_values + size_t(nnz) * 4 + 64);
  return l;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Rows per task for the row-parallel passes (a few hundred KB of input each).
int64_t row_tasks(int64_t rows, int64_t cols) { return task_count(rows, double(cols), 65536.0); }

}  // namespace

size_t sparse_blob_bytes(int64_t rows, int64_t cols, int64_t nnz) { return layout(rows, cols, nnz).total; }

uint64_t sparse_header_nnz(const void* blob) {
  Header h;
  std::memcpy(&h, blob, sizeof h);
  return h.nnz;
}

size_t sparse_stored_bytes(const Tensor& t) {
  if (t.dtype() == DType::F32_SPARSE) return t.nbytes();
  SEC_ASSERT(t.dtype() == DType::F32 && t.ndim() == 2);
  const int64_t rows = t.dim(0), cols = t.dim(1);
  const float* w = t.f32();
  const int64_t tasks = row_tasks(rows, cols), per = (rows + tasks - 1) / tasks;
  std::vector<int64_t> counts(size_t(tasks), 0);
  parallel_for(tasks, [&](int64_t k) {
    int64_t n = 0;
    for (int64_t i = k * per * cols, e = std::min(rows, (k + 1) * per) * cols; i < e; i++) n += bits_of(w[i]) != 0;
    counts[size_t(k)] = n;
  });
  int64_t nnz = 0;
  for (int64_t n : counts) nnz += n;
  return sparse_blob_bytes(rows, cols, nnz);
}

SparseView sparse_view(const Tensor& t) {
  SEC_ASSERT(t.dtype() == DType::F32_SPARSE && t.ndim() == 2);
  const auto* base = static_cast<const uint8_t*>(t.raw());
  Header h;
  std::memcpy(&h, base, sizeof h);
  SparseView v;
  v.rows = int64_t(h.rows);
  v.cols = int64_t(h.cols);
  v.nnz = int64_t(h.nnz);
  v.mask_stride = int64_t(h.mask_stride);
  v.nm_n = int(h.nm_n);
  v.nm_m = int(h.nm_m);
  const Layout l = layout(v.rows, v.cols, v.nnz);
  v.row_off = reinterpret_cast<const uint64_t*>(base + l.off_rows);
  v.mask = base + l.off_mask;
  v.values = reinterpret_cast<const float*>(base + l.off_values);
  return v;
}

Tensor compress_sparse(const Tensor& dense_in, DType format) {
  SEC_CHECK(format == DType::F32_SPARSE, "compress_sparse: unknown sparse format ", dtype_name(format));
  SEC_CHECK(dense_in.ndim() == 2, "compress_sparse: needs a matrix, got shape ", shape_str(dense_in.shape()));
  if (dense_in.dtype() == DType::F32_SPARSE) return dense_in.clone();
  const Tensor dense = dense_in.dtype() == DType::F32 ? dense_in : dense_in.to(DType::F32);
  const int64_t rows = dense.dim(0), cols = dense.dim(1), stride = mask_stride_for(cols);
  const float* w = dense.f32();
  // Pass 1: stored elements per row, and which N:M patterns every row satisfies.
  std::vector<uint64_t> off(size_t(rows) + 1, 0);
  std::atomic<bool> ok24{cols % 4 == 0}, ok48{cols % 8 == 0};
  const int64_t tasks = row_tasks(rows, cols), per = (rows + tasks - 1) / tasks;
  parallel_for(tasks, [&](int64_t t) {
    bool r24 = true, r48 = true;
    for (int64_t r = t * per, e = std::min(rows, r + per); r < e; r++) {
      const float* row = w + r * cols;
      uint64_t n = 0;
      int g4 = 0, g8 = 0;
      for (int64_t c = 0; c < cols; c++) {
        const int nz = bits_of(row[c]) != 0;
        n += nz;
        g4 += nz;
        g8 += nz;
        if (c % 4 == 3) r24 &= g4 <= 2, g4 = 0;
        if (c % 8 == 7) r48 &= g8 <= 4, g8 = 0;
      }
      off[size_t(r) + 1] = n;
    }
    if (!r24) ok24.store(false);
    if (!r48) ok48.store(false);
  });
  for (int64_t r = 0; r < rows; r++) off[size_t(r) + 1] += off[size_t(r)];
  const int64_t nnz = int64_t(off[size_t(rows)]);
  const Layout l = layout(rows, cols, nnz);
  Tensor out = Tensor::empty_packed({rows, cols}, DType::F32_SPARSE, l.total);
  auto* base = static_cast<uint8_t*>(out.raw());
  std::memset(base, 0, l.off_values);
  std::memset(base + l.off_values + size_t(nnz) * 4, 0, l.total - l.off_values - size_t(nnz) * 4);
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = 1;
  h.value_type = 0;
  h.rows = uint64_t(rows);
  h.cols = uint64_t(cols);
  h.nnz = uint64_t(nnz);
  h.mask_stride = uint64_t(stride);
  if (ok24.load() && rows > 0) {
    h.nm_n = 2, h.nm_m = 4;
  } else if (ok48.load() && rows > 0) {
    h.nm_n = 4, h.nm_m = 8;
  }
  std::memcpy(base, &h, sizeof h);
  std::memcpy(base + l.off_rows, off.data(), off.size() * 8);
  uint8_t* mask = base + l.off_mask;
  float* values = reinterpret_cast<float*>(base + l.off_values);
  // Pass 2: masks and values.
  parallel_for(tasks, [&](int64_t t) {
    for (int64_t r = t * per, e = std::min(rows, r + per); r < e; r++) {
      const float* row = w + r * cols;
      uint8_t* m = mask + r * stride;
      float* v = values + off[size_t(r)];
      for (int64_t c = 0; c < cols; c++)
        if (bits_of(row[c]) != 0) {
          m[c / 8] |= uint8_t(1u << (c % 8));
          *v++ = row[c];
        }
    }
  });
  return out;
}

Tensor decompress_sparse(const Tensor& sparse) {
  const SparseView v = sparse_view(sparse);
  Tensor out = Tensor::empty({v.rows, v.cols});
  float* w = out.f32();
  const int64_t tasks = row_tasks(v.rows, v.cols), per = (v.rows + tasks - 1) / tasks;
  parallel_for(tasks, [&](int64_t t) {
    for (int64_t r = t * per, e = std::min(v.rows, r + per); r < e; r++) {
      const uint8_t* m = v.row_mask(r);
      const float* val = v.values + v.row_off[r];
      float* row = w + r * v.cols;
      for (int64_t c = 0; c < v.cols; c++) row[c] = (m[c / 8] >> (c % 8)) & 1 ? *val++ : 0.f;
    }
  });
  return out;
}

void validate_sparse_blob(const void* blob, size_t bytes, const Shape& shape, const std::string& what) {
  SEC_CHECK(shape.size() == 2 && shape[0] >= 0 && shape[1] >= 0, what, ": a sparse tensor must be a matrix, not ",
            shape_str(shape));
  SEC_CHECK(bytes >= kHeader, what, ": sparse blob of ", bytes, " bytes is shorter than its header");
  const auto* base = static_cast<const uint8_t*>(blob);
  Header h;
  std::memcpy(&h, base, sizeof h);
  SEC_CHECK(std::memcmp(h.magic, kMagic, 8) == 0 && h.version == 1 && h.value_type == 0, what,
            ": not a secateur sparse blob (bad magic, version or value type)");
  SEC_CHECK(h.rows == uint64_t(shape[0]) && h.cols == uint64_t(shape[1]), what, ": sparse header says ", h.rows, "x",
            h.cols, " but the tensor is ", shape_str(shape));
  SEC_CHECK(h.mask_stride == uint64_t(mask_stride_for(shape[1])), what, ": bad mask stride ", h.mask_stride);
  SEC_CHECK(h.nnz <= h.rows * h.cols, what, ": ", h.nnz, " values for ", h.rows * h.cols, " elements");
  const Layout l = layout(shape[0], shape[1], int64_t(h.nnz));
  SEC_CHECK(bytes >= l.total, what, ": sparse blob is ", bytes, " bytes, its header needs ", l.total);
  SEC_CHECK((h.nm_n == 0 && h.nm_m == 0) || (h.nm_n == 2 && h.nm_m == 4) || (h.nm_n == 4 && h.nm_m == 8), what,
            ": unsupported N:M pattern ", h.nm_n, ":", h.nm_m);
  const auto* off = reinterpret_cast<const uint64_t*>(base + l.off_rows);
  const uint8_t* mask = base + l.off_mask;
  const int64_t cols = shape[1], stride = int64_t(h.mask_stride);
  SEC_CHECK(off[0] == 0 && off[h.rows] == h.nnz, what, ": row offsets do not span the values");
  for (uint64_t r = 0; r < h.rows; r++) {
    SEC_CHECK(off[r] <= off[r + 1], what, ": row offsets decrease at row ", r);
    const uint8_t* m = mask + int64_t(r) * stride;
    uint64_t n = 0;
    for (int64_t b = 0; b < stride; b++) {
      uint8_t byte = m[b];
      if (b * 8 + 8 > cols) {
        const int64_t valid = std::max<int64_t>(0, cols - b * 8);
        SEC_CHECK((byte >> valid) == 0, what, ": mask bits past the last column in row ", r);
      }
      n += uint64_t(std::popcount(byte));
    }
    SEC_CHECK(n == off[r + 1] - off[r], what, ": row ", r, " has ", n, " mask bits but ", off[r + 1] - off[r],
              " values");
    if (h.nm_m) {
      for (int64_t c0 = 0; c0 < cols; c0 += h.nm_m) {
        uint32_t g = 0;
        for (int64_t c = c0; c < std::min<int64_t>(cols, c0 + h.nm_m); c++) g += (m[c / 8] >> (c % 8)) & 1;
        SEC_CHECK(g <= h.nm_n, what, ": row ", r, " breaks the ", h.nm_n, ":", h.nm_m, " pattern it declares");
      }
    }
  }
}

std::string sparse_pattern(const Tensor& t) {
  const SparseView v = sparse_view(t);
  return v.nm_m ? std::to_string(v.nm_n) + ":" + std::to_string(v.nm_m) : std::string();
}

}  // namespace sec
