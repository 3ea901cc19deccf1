// CPU kernels of the bucketed ranking core (alrp_core/ranking.py explains
// the algorithm; its torch-op path is the reference these kernels are tested against).
//
// Three passes over the M logits, each split into fixed chunks run on torch's intra-op threads;
// partial results (per chunk, or per part of chunks for the histogram) are combined in order, so
// that the results do not depend on the number of threads:
//   scan       validity checks, the positives' count and indices, and one byte per logit
//              (0 negative, 1 positive, 2 ignored) for the next pass;
//   histogram  per-interval count and sum of the shifted scores of the relevant negatives, and
//              each logit's interval (the dummy interval n + 1 where it is not binned);
//   gradient   A[k] + B[k] * x from the interval k of every logit (A = B = 0 in the dummy and
//              in interval 0), then the positives' values.
// A negative below the lowest boundary (x < bounds[0] = min_i s_i - delta) is in interval 0,
// where H = 0 against every positive: the histogram skips it when asked to.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t kChunk = 1 << 15;
// Chunks per thread at least: a small batch runs on the calling thread (waking the others costs
// more than its work).
constexpr int64_t kGrain = 8;
// Partial histograms at most (see histogram()).
constexpr int64_t kParts = 32;
// Up to this many boundaries in a grid cell are stepped over without a branch; more, a binary
// search.
constexpr int kLinearSteps = 2;
constexpr uint8_t kNegative = 0, kPositive = 1, kIgnored = 2;

int64_t num_chunks(int64_t m) { return (m + kChunk - 1) / kChunk; }

template <typename F>
void dispatch_labels(const at::Tensor& labels, F&& f) {
  switch (labels.scalar_type()) {
    case at::kLong: f(int64_t{}); break;
    case at::kInt: f(int32_t{}); break;
    case at::kShort: f(int16_t{}); break;
    case at::kChar: f(int8_t{}); break;
    case at::kByte: f(uint8_t{}); break;
    case at::kBool: f(bool{}); break;
    default: TORCH_CHECK(false, "ranking_cpu: unsupported label dtype ", labels.scalar_type());
  }
}

template <typename F>
void dispatch_scores(const at::Tensor& scores, F&& f) {
  switch (scores.scalar_type()) {
    case at::kFloat: f(float{}); break;
    case at::kDouble: f(double{}); break;
    default: TORCH_CHECK(false, "ranking_cpu: scores must be float32 or float64, got ",
                         scores.scalar_type());
  }
}

template <typename F>
void dispatch_index(const at::Tensor& index, F&& f) {
  switch (index.scalar_type()) {
    case at::kShort: f(uint16_t{}); break;  // int16 storage read as uint16
    case at::kInt: f(int32_t{}); break;
    default: TORCH_CHECK(false, "ranking_cpu: index must be int16 or int32");
  }
}

void check_vector(const at::Tensor& t, const char* name, int64_t m) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 1 && t.numel() == m && t.is_contiguous(),
              "ranking_cpu: ", name, " must be a contiguous 1-D CPU tensor of ", m, " entries");
}

// Non-finite floats have all exponent bits set.
inline bool non_finite(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7f800000u) == 0x7f800000u;
}
inline bool non_finite(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
}

// Label value to code; out-of-range values are caught by the scan's range check.
template <typename L>
inline uint8_t label_code(L v) {
  return v == static_cast<L>(1) ? kPositive : (v == static_cast<L>(0) ? kNegative : kIgnored);
}
template <typename L>
inline bool out_of_range(L v) {
  return static_cast<int64_t>(v) < -1 || static_cast<int64_t>(v) > 1;
}
template <>
inline bool out_of_range(bool) { return false; }

// The interval index of a shifted score x >= bounds[0]: the number of boundaries <= x. A uniform
// grid of `cells` cells starts at bounds[0]; x is in cell c = int((x - bounds[0]) * inv_width),
// clamped to cells, the same formula that put the boundaries in their cells (ranking.py,
// ScoreIntervals.grid), so that table[c] <= index(x) <= table[c + 1]: a step or two between.
struct Intervals {
  std::vector<double> bounds;  // the n boundaries, then +inf
  int64_t n;
  const int32_t* table;
  int64_t cells;
  double first, last, inv_width;

  Intervals(const at::Tensor& bounds_t, double inv_width_, const at::Tensor& table_t)
      : bounds(bounds_t.data_ptr<double>(), bounds_t.data_ptr<double>() + bounds_t.numel()),
        n(bounds_t.numel()), table(table_t.data_ptr<int32_t>()), cells(table_t.numel() - 2),
        first(bounds[0]), last(bounds[n - 1]), inv_width(inv_width_) {
    bounds.push_back(std::numeric_limits<double>::infinity());
  }

  inline int64_t locate(double x) const {
    if (x >= last) return n;
    const int64_t c = std::min(static_cast<int64_t>((x - first) * inv_width), cells);
    int64_t k = table[c];
    const int64_t end = table[c + 1];
    const double* b = bounds.data();
    if (end - k > kLinearSteps) return std::upper_bound(b + k, b + end, x) - b;
    // The boundaries of later cells are > x (and b[n] = inf): the steps need no bound check
    // and no branch.
    for (int step = 0; step < kLinearSteps; ++step) k += b[k] <= x;
    return k;
  }
};

void check_intervals(const at::Tensor& bounds, const at::Tensor& table) {
  TORCH_CHECK(bounds.scalar_type() == at::kDouble && bounds.is_contiguous() && bounds.numel() >= 2,
              "ranking_cpu: bounds must be contiguous float64 with >= 2 entries");
  TORCH_CHECK(table.scalar_type() == at::kInt && table.is_contiguous() && table.numel() >= 3,
              "ranking_cpu: table must be contiguous int32 with >= 3 entries");
}

}  // namespace

// Returns (stats, pos_index, codes): stats float64 [all scores finite (1/0), label min, label
// max, number of positives] (min and max are exact only when some label is out of range;
// otherwise -1 and 1), pos_index int64 ascending, codes uint8 per logit.
std::tuple<at::Tensor, at::Tensor, at::Tensor> scan(const at::Tensor& scores,
                                                    const at::Tensor& labels) {
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(labels, "labels", m);
  std::vector<uint8_t> bad_score(chunks, 0), bad_label(chunks, 0);
  std::vector<std::vector<int64_t>> positives(chunks);
  at::Tensor codes = at::empty({m}, scores.options().dtype(at::kByte));
  uint8_t* code = codes.data_ptr<uint8_t>();
  double lab_min = -1, lab_max = 1;
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_labels(labels, [&](auto l_tag) {
      using L = decltype(l_tag);
      const S* s = scores.data_ptr<S>();
      const L* t = labels.data_ptr<L>();
      at::parallel_for(0, chunks, kGrain, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t j0 = c * kChunk, j1 = std::min(m, j0 + kChunk);
          bool bad_s = false, bad_l = false;
          int64_t count = 0;
          for (int64_t j = j0; j < j1; ++j) {
            bad_s |= non_finite(s[j]);
            bad_l |= out_of_range(t[j]);
            const uint8_t k = label_code(t[j]);
            count += k == kPositive;
            code[j] = k;
          }
          bad_score[c] = bad_s;
          bad_label[c] = bad_l;
          if (count) {
            std::vector<int64_t>& pos = positives[c];
            pos.reserve(count);
            for (int64_t j = j0; j < j1; ++j)
              if (code[j] == kPositive) pos.push_back(j);
          }
        }
      });
      if (std::find(bad_label.begin(), bad_label.end(), 1) != bad_label.end()) {
        // Only for the error message: the exact range.
        lab_min = lab_max = static_cast<double>(static_cast<int64_t>(t[0]));
        for (int64_t j = 0; j < m; ++j) {
          lab_min = std::min(lab_min, static_cast<double>(static_cast<int64_t>(t[j])));
          lab_max = std::max(lab_max, static_cast<double>(static_cast<int64_t>(t[j])));
        }
      }
    });
  });
  int64_t num_pos = 0;
  for (const auto& pos : positives) num_pos += static_cast<int64_t>(pos.size());
  at::Tensor stats = at::empty({4}, scores.options().dtype(at::kDouble));
  double* st = stats.data_ptr<double>();
  st[0] = std::find(bad_score.begin(), bad_score.end(), 1) == bad_score.end();
  st[1] = lab_min;
  st[2] = lab_max;
  st[3] = static_cast<double>(num_pos);
  at::Tensor pos_index = at::empty({num_pos}, scores.options().dtype(at::kLong));
  int64_t* out = pos_index.data_ptr<int64_t>();
  for (const auto& pos : positives) out = std::copy(pos.begin(), pos.end(), out);
  return {stats, pos_index, codes};
}

// Returns (hist, index): hist float64 (2, n + 2), per interval 0 .. n and a zero dummy bin
// n + 1, the sums over the binned negatives of 1 and of x = score - origin; index (M, ) int16
// (read as uint16; int32 when n + 2 > 65535), each logit's interval, n + 1 where not binned.
// With skip_irrelevant the negatives of interval 0 are not binned.
std::tuple<at::Tensor, at::Tensor> histogram(const at::Tensor& scores, const at::Tensor& codes,
                                             double origin, const at::Tensor& bounds,
                                             double inv_width, const at::Tensor& table,
                                             bool skip_irrelevant) {
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(codes, "codes", m);
  check_intervals(bounds, table);
  const Intervals iv(bounds, inv_width, table);
  const int64_t bins = iv.n + 1, dummy = iv.n + 1;
  at::Tensor index = at::empty({m}, scores.options().dtype(dummy <= 65535 ? at::kShort : at::kInt));
  // The histogram is summed per part of the logits (parts of whole chunks, their number fixed by
  // M and n alone, at most kParts and about 8 MB of partial sums), then over the parts in order.
  const int64_t max_parts = std::max<int64_t>(1, std::min<int64_t>(kParts, (8 << 20) / (bins * 16)));
  const int64_t parts = std::max<int64_t>(1, std::min(chunks, max_parts));
  const int64_t part_chunks = (chunks + parts - 1) / parts;
  // partial[p][k] = (count, moment) of part p, interleaved: one bin, one cache line.
  std::vector<double> partial(static_cast<size_t>(parts * bins * 2), 0.0);
  const uint8_t* code = codes.data_ptr<uint8_t>();
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_index(index, [&](auto i_tag) {
      using I = decltype(i_tag);
      const S* s = scores.data_ptr<S>();
      I* out = reinterpret_cast<I*>(index.data_ptr());
      const int64_t grain = std::max<int64_t>(1, (kGrain + part_chunks - 1) / part_chunks);
      at::parallel_for(0, parts, grain, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          double* h = partial.data() + p * bins * 2;
          const int64_t j1 = std::min(m, (p + 1) * part_chunks * kChunk);
          for (int64_t j = p * part_chunks * kChunk; j < j1; ++j) {
            int64_t k = dummy;
            if (code[j] == kNegative) {
              const double x = static_cast<double>(s[j]) - origin;
              if (x >= iv.first) {
                k = iv.locate(x);
              } else if (!skip_irrelevant) {
                k = 0;
              }
              if (k != dummy) {
                h[2 * k] += 1.0;
                h[2 * k + 1] += x;
              }
            }
            out[j] = static_cast<I>(k);
          }
        }
      });
    });
  });
  at::Tensor hist = at::zeros({2, bins + 1}, scores.options().dtype(at::kDouble));
  double* count = hist.data_ptr<double>();
  double* moment = count + bins + 1;
  for (int64_t p = 0; p < parts; ++p) {
    const double* h = partial.data() + p * bins * 2;
    for (int64_t k = 0; k < bins; ++k) {
      count[k] += h[2 * k];
      moment[k] += h[2 * k + 1];
    }
  }
  return {hist, index};
}

// The gradient on every logit, in the dtype of scores: offset[k] + slope[k] * (score - origin)
// with k = index[j] (offset and slope are 0 in the dummy interval and in interval 0), then
// pos_grad[i] at pos_index[i].
at::Tensor gradient(const at::Tensor& scores, const at::Tensor& index, double origin,
                    const at::Tensor& offset, const at::Tensor& slope,
                    const at::Tensor& pos_index, const at::Tensor& pos_grad) {
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(index, "index", m);
  TORCH_CHECK(offset.scalar_type() == at::kDouble && slope.scalar_type() == at::kDouble &&
                  offset.is_contiguous() && slope.is_contiguous() &&
                  offset.numel() == slope.numel(),
              "ranking_cpu: offset and slope must be contiguous float64 of one length");
  TORCH_CHECK(pos_index.scalar_type() == at::kLong && pos_grad.scalar_type() == at::kDouble &&
                  pos_index.is_contiguous() && pos_grad.is_contiguous() &&
                  pos_index.numel() == pos_grad.numel(),
              "ranking_cpu: pos_index (int64) and pos_grad (float64) must match");
  const int64_t bins = offset.numel();
  const double* a = offset.data_ptr<double>();
  const double* b = slope.data_ptr<double>();
  at::Tensor grad = at::empty_like(scores);
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_index(index, [&](auto i_tag) {
      using I = decltype(i_tag);
      const S* s = scores.data_ptr<S>();
      const I* idx = reinterpret_cast<const I*>(index.data_ptr());
      S* g = grad.data_ptr<S>();
      at::parallel_for(0, chunks, kGrain, [&](int64_t c0, int64_t c1) {
        const int64_t j1 = std::min(m, c1 * kChunk);
        for (int64_t j = c0 * kChunk; j < j1; ++j) {
          const int64_t k = std::min<int64_t>(idx[j], bins - 1);
          g[j] = static_cast<S>((static_cast<double>(s[j]) - origin) * b[k] + a[k]);
        }
      });
      const int64_t* pi = pos_index.data_ptr<int64_t>();
      const double* pg = pos_grad.data_ptr<double>();
      for (int64_t i = 0; i < pos_index.numel(); ++i) g[pi[i]] = static_cast<S>(pg[i]);
    });
  });
  return grad;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.doc() = "CPU kernels of alrp_core's bucketed ranking core";
  mod.def("scan", &scan, "validity stats, positive indices, label codes");
  mod.def("histogram", &histogram, "per-interval sums over the negatives, interval indices");
  mod.def("gradient", &gradient, "the error-driven gradient on every logit");
}
