// CPU kernels of the bucketed ranking core (alrp_core/backends/__init__.py explains the
// passes, alrp_core/intervals.py the geometry; the torch-op backend is the reference these
// kernels are tested against).
//
// Three passes over the M logits, each split into fixed chunks of kChunk logits run on torch's
// intra-op threads; partial results (per chunk, or per part of chunks for the histogram's dense
// chunks, its sparse chunks summed after the pass) are combined in order, so that the results do
// not depend on the number of threads:
//   scan       validity checks, the positives' count and indices, one key byte per logit (0
//              positive, 1 ignored, 2 + a coarse level of the score for a negative: at least as
//              high for a higher score) and each chunk's largest key, in one read of the scores
//              and labels (hand-written AVX2 for float32 scores where the CPU has it);
//   histogram  per-interval count and sum of the shifted scores of the relevant negatives, and
//              the selection the gradient needs, in one entries array: per chunk, the
//              (chunk-local offset, interval) pairs of the binned negatives (a sparse chunk) or,
//              where a sample of its keys says more than a quarter are binned (or the pairs
//              would not fit), the interval of every logit (a dense chunk, the dummy interval
//              n + 1 where not binned);
//   gradient   A[k] + B[k] * x on the binned negatives (A = B = 0 in the dummy and in interval
//              0), 0 elsewhere, then the positives' values.
// A negative below the lowest boundary (x < bounds[0] = min_i s_i - delta) is in interval 0,
// where H = 0 against every positive: the histogram skips it when asked to, and with it every
// negative whose key is below the threshold's key, without reading its score, and every chunk
// whose largest key is, without reading anything of it. Late in training that leaves the
// histogram about a byte per logit to read and the gradient a zero fill and a few stores.
// Besides, kernels of the P-sized steps: argsort (the positives' scores) and window_geometry
// (the boundaries and counts of their windows) on the calling thread, and rank_sort_errors (Rank
// & Sort Loss's errors and gradients among the positives, with the IoU-restricted sums of
// alrp_core/missorted.py), whose Fenwick sweeps take two threads.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
// The scan's AVX2 path (chosen at run time) needs x86-64 and GCC or clang.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ALRP_SCAN_AVX2 1
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <vector>

namespace {

// argsort merges up to this many ascending runs; more, it sorts by radix.
constexpr int64_t kMergedRuns = 4;
// Chunk-local offsets fit 16 bits.
constexpr int64_t kChunk = 1 << 15;
// Chunks per thread at least: a small batch runs on the calling thread (waking the others costs
// more than its work).
constexpr int64_t kGrain = 8;
// Partial histograms at most (see histogram()), and histogram bins per thread at least where
// they are combined.
constexpr int64_t kParts = 32, kCombineGrain = 4096;
// Grid cells per interval boundary of the constant-time interval lookup, and at most this many
// cells (their indices are exact in float32).
constexpr int64_t kGridCellsPerBound = 4, kMaxGridCells = int64_t{1} << 24;
// Up to this many thresholds in a grid cell are compared without a branch; more, a binary
// search.
constexpr int kLinearSteps = 2;
// Thresholds or grid cells per thread at least where the lookup's tables are made.
constexpr int64_t kGridGrain = 8192;
// Key bytes: a negative's key is kLowestNegative + clamp(floor(kLevelsPerUnit * s) + 128, 0,
// 253), so that scores in [-16, 15.75] get a level of their own every 1/8.
constexpr uint8_t kPositive = 0, kIgnored = 1, kLowestNegative = 2, kHighestKey = 255;
constexpr double kLevelsPerUnit = 8, kLevelOffset = 130;
// A chunk keeps a dense interval array where more than a quarter of the keys of its first
// kDenseSample logits reach the lowest boundary's key (a sample decides, to read only an eighth
// of a chunk's keys twice; either form gives the same sums, in the same order).
constexpr int64_t kDenseSample = kChunk / 8;

int64_t num_chunks(int64_t m) { return (m + kChunk - 1) / kChunk; }

template <typename F>
void dispatch_labels(const at::Tensor& labels, F&& f) {
  switch (labels.scalar_type()) {
    case at::kLong: f(int64_t{}); break;
    case at::kInt: f(int32_t{}); break;
    case at::kShort: f(int16_t{}); break;
    case at::kChar: f(int8_t{}); break;
    case at::kByte:
    case at::kBool: f(uint8_t{}); break;  // a bool is one byte, 0 or 1
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

void check_vector(const at::Tensor& t, const char* name, int64_t m, at::ScalarType dtype) {
  TORCH_CHECK(t.device().is_cpu() && t.dim() == 1 && t.numel() == m && t.is_contiguous() &&
                  t.scalar_type() == dtype,
              "ranking_cpu: ", name, " must be a contiguous 1-D CPU tensor of ", m, " ",
              c10::toString(dtype));
}

void check_vector(const at::Tensor& t, const char* name, int64_t m) {
  check_vector(t, name, m, t.scalar_type());
}

// Non-finite floats have all exponent bits set.
inline uint32_t non_finite(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7f800000u) == 0x7f800000u;
}
inline uint32_t non_finite(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return (bits & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
}

template <typename L>
inline uint32_t out_of_range(L v) {
  return (v < static_cast<L>(-1)) | (v > static_cast<L>(1));
}
template <>
inline uint32_t out_of_range(uint8_t v) { return v > 1; }

// A negative's key from its score (in the score's own dtype, as every comparison with a
// threshold's key assumes only that a higher score never gets a lower key). s * 8 is exact, so
// a fused multiply-add rounds alike.
template <typename S>
inline int32_t negative_key(S s) {
  S v = s * static_cast<S>(kLevelsPerUnit) + static_cast<S>(kLevelOffset);
  v = v > static_cast<S>(kLowestNegative) ? v : static_cast<S>(kLowestNegative);  // NaN too
  v = v < static_cast<S>(kHighestKey) ? v : static_cast<S>(kHighestKey);
  return static_cast<int32_t>(v);
}

// The lowest key a negative with score s >= t can have: one level below the key of t (covering
// the rounding of the score's own dtype), at least kLowestNegative.
inline uint8_t lowest_key_from(double t) {
  return static_cast<uint8_t>(std::max<int32_t>(kLowestNegative, negative_key(t) - 1));
}

// What the scan finds in a run of logits: whether a score is NaN/Inf (bit 0 of bad) or a label
// out of range (bit 1), and the largest key.
struct RunScan {
  uint32_t bad;
  uint8_t highest;
};

// The keys of len logits (the first one logit j0 of the batch), their RunScan, and the indices
// of the positives appended to pos, ascending. The key loop is branch-free, so that the
// compiler vectorises it (every key is computed, then selected).
template <typename S, typename L>
RunScan scan_run(const S* s, const L* t, uint8_t* key, int64_t len, int64_t j0,
                 std::vector<int64_t>& pos) {
  uint32_t bad_s = 0, bad_l = 0;
  for (int64_t j = 0; j < len; ++j) {
    const L label = t[j];
    bad_s |= non_finite(s[j]);
    bad_l |= out_of_range(label);
    const int32_t level = negative_key(s[j]);
    key[j] = static_cast<uint8_t>(label == static_cast<L>(0)
                                      ? level
                                      : static_cast<int32_t>(label != static_cast<L>(1)));
  }
  // The keys again, from the cache.
  int64_t count = 0;
  uint8_t highest = 0;
  for (int64_t j = 0; j < len; ++j) {
    count += key[j] == kPositive;
    highest = std::max(highest, key[j]);
  }
  if (count)
    for (int64_t j = 0; j < len; ++j)
      if (key[j] == kPositive) pos.push_back(j0 + j);
  return {bad_s | bad_l << 1, highest};
}

// scan_run written for AVX2 (x86-64 with GCC or clang) for float32 scores, chosen at run time
// where the CPU has it: one pass, 32 logits a step, the same keys. The compiler's own
// vectorisation of scan_run packs int64 compares into bytes slowly; here the labels become
// int32 lanes once (all 64 bits checked for the range), and the positives come from a mask.
#if defined(ALRP_SCAN_AVX2)

// Eight labels as int32 lanes; for int64, the lanes whose high 32 bits are not the sign of the
// low 32 bits are or-ed into *bad first (the low 32 bits alone could look valid).
__attribute__((target("avx2"))) inline __m256i load_labels(const int64_t* t, __m256i* bad) {
  const __m256 a = _mm256_loadu_ps(reinterpret_cast<const float*>(t));
  const __m256 b = _mm256_loadu_ps(reinterpret_cast<const float*>(t + 4));
  // The low and the high halves: a0 a1 b0 b1 | a2 a3 b2 b3.
  const __m256i low = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
  const __m256i high = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  *bad = _mm256_or_si256(*bad, _mm256_xor_si256(high, _mm256_srai_epi32(low, 31)));
  return _mm256_permute4x64_epi64(low, _MM_SHUFFLE(3, 1, 2, 0));
}
__attribute__((target("avx2"))) inline __m256i load_labels(const int32_t* t, __m256i*) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t));
}
__attribute__((target("avx2"))) inline __m256i load_labels(const int16_t* t, __m256i*) {
  return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
}
__attribute__((target("avx2"))) inline __m256i load_labels(const int8_t* t, __m256i*) {
  return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t)));
}
__attribute__((target("avx2"))) inline __m256i load_labels(const uint8_t* t, __m256i*) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t)));
}

template <typename L>
__attribute__((target("avx2,fma"))) RunScan scan_run_avx2(const float* s, const L* t,
                                                          uint8_t* key, int64_t len, int64_t j0,
                                                          std::vector<int64_t>& pos) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i magnitude_bits = _mm256_set1_epi32(0x7fffffff);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256 scale = _mm256_set1_ps(static_cast<float>(kLevelsPerUnit));
  const __m256 shift = _mm256_set1_ps(static_cast<float>(kLevelOffset));
  const __m256 lowest = _mm256_set1_ps(kLowestNegative), highest_key = _mm256_set1_ps(kHighestKey);
  // Checked once at the end: the largest |score| bits (NaN/Inf have all exponent bits set), the
  // lowest and highest label (int32 lanes), the int64 labels' high halves, the largest key.
  __m256i magnitude = zero, label_min = zero, label_max = zero, bad_high = zero, highest = zero;
  int64_t j = 0;
  for (; j + 32 <= len; j += 32) {
    __m256i k[4];
    for (int q = 0; q < 4; ++q) {
      const __m256 x = _mm256_loadu_ps(s + j + 8 * q);
      magnitude = _mm256_max_epi32(magnitude,
                                   _mm256_and_si256(_mm256_castps_si256(x), magnitude_bits));
      // negative_key: max_ps returns its second operand for a NaN, as the scalar clamp does.
      const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(x, scale, shift), lowest),
                                     highest_key);
      const __m256i label = load_labels(t + j + 8 * q, &bad_high);
      label_min = _mm256_min_epi32(label_min, label);
      label_max = _mm256_max_epi32(label_max, label);
      // The level for a negative; else the sign bit: 1 ignored (-1), 0 positive.
      k[q] = _mm256_blendv_epi8(_mm256_srli_epi32(label, 31), _mm256_cvttps_epi32(v),
                                _mm256_cmpeq_epi32(label, zero));
    }
    const __m256i bytes = _mm256_permutevar8x32_epi32(
        _mm256_packus_epi16(_mm256_packs_epi32(k[0], k[1]), _mm256_packs_epi32(k[2], k[3])),
        order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(key + j), bytes);
    highest = _mm256_max_epu8(highest, bytes);
    uint32_t positive = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bytes, zero)));
    for (; positive; positive &= positive - 1) pos.push_back(j0 + j + __builtin_ctz(positive));
  }
  const RunScan tail = scan_run(s + j, t + j, key + j, len - j, j0 + j, pos);
  const __m256i non_finite = _mm256_cmpgt_epi32(magnitude, _mm256_set1_epi32(0x7f7fffff));
  const __m256i out_of_range =
      _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(-1), label_min),
                                      _mm256_cmpgt_epi32(label_max, _mm256_set1_epi32(1))),
                      bad_high);
  __m128i top = _mm_max_epu8(_mm256_castsi256_si128(highest), _mm256_extracti128_si256(highest, 1));
  top = _mm_max_epu8(top, _mm_srli_si128(top, 8));
  top = _mm_max_epu8(top, _mm_srli_si128(top, 4));
  top = _mm_max_epu8(top, _mm_srli_si128(top, 2));
  top = _mm_max_epu8(top, _mm_srli_si128(top, 1));
  const uint32_t bad = (_mm256_testz_si256(non_finite, non_finite) ? 0u : 1u) |
                       (_mm256_testz_si256(out_of_range, out_of_range) ? 0u : 2u);
  return {tail.bad | bad,
          std::max(tail.highest, static_cast<uint8_t>(_mm_cvtsi128_si32(top) & 0xff))};
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool kHaveAvx2 = false;
#endif
bool use_avx2 = kHaveAvx2;

template <typename S, typename L>
RunScan scan_run_best(const S* s, const L* t, uint8_t* key, int64_t len, int64_t j0,
                      std::vector<int64_t>& pos) {
#if defined(ALRP_SCAN_AVX2)
  if constexpr (std::is_same_v<S, float>)
    if (use_avx2) return scan_run_avx2(s, t, key, len, j0, pos);
#endif
  return scan_run(s, t, key, len, j0, pos);
}

// The S values in their order as unsigned integers (-0.0 just below 0.0), and back.
template <typename S>
using OrderBits = std::conditional_t<sizeof(S) == 4, uint32_t, uint64_t>;

template <typename S>
OrderBits<S> order_bits(S v) {
  using U = OrderBits<S>;
  constexpr U kSign = U{1} << (8 * sizeof(U) - 1);
  U u;
  std::memcpy(&u, &v, sizeof u);
  return (u & kSign) ? ~u : (u | kSign);
}

template <typename S>
S from_order_bits(OrderBits<S> u) {
  using U = OrderBits<S>;
  constexpr U kSign = U{1} << (8 * sizeof(U) - 1);
  u = (u & kSign) ? (u & ~kSign) : ~u;
  S v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// The lowest S value t with double(t) - origin >= b (+inf where no finite one has).
// double(s) - origin never falls where s rises, so for every S value s, s >= t iff double(s) -
// origin >= b. A search over the S values in order, bracketed from the nearest one to b + origin
// by doubling steps: that one is an ulp or two off, except where |b + origin| is far below
// |origin| and a long run of S values has the same x.
template <typename S>
S threshold(double b, double origin) {
  using U = OrderBits<S>;
  constexpr S kInf = std::numeric_limits<S>::infinity();
  const U lowest = order_bits(-kInf), highest = order_bits(kInf);  // never, always reached
  auto reaches = [&](U u) { return static_cast<double>(from_order_bits<S>(u)) - origin >= b; };
  const double largest = std::numeric_limits<S>::max();
  const U start = order_bits(static_cast<S>(std::min(std::max(b + origin, -largest), largest)));
  U lo = start, hi = start;  // lo below the threshold, hi at or above it
  if (reaches(start)) {
    for (U step = 1; reaches(lo); step *= 2) {
      hi = lo;
      lo = lo - lowest <= step ? lowest : lo - step;
    }
  } else {
    for (U step = 1; !reaches(hi); step *= 2) {
      lo = hi;
      hi = highest - hi <= step ? highest : hi + step;
    }
  }
  while (hi - lo > 1) {
    const U mid = lo + (hi - lo) / 2;
    (reaches(mid) ? hi : lo) = mid;
  }
  return from_order_bits<S>(hi);
}

// A grid cell of Intervals: base, the number of thresholds in the cells below, and the cell's
// own thresholds (+inf where it has fewer than kLinearSteps); base = -1 where it has more.
// 16 bytes for float32 scores, 32 for float64: a cell never straddles a cache line.
template <typename S>
struct alignas(4 * sizeof(S)) GridCell {
  int32_t base;
  S t[kLinearSteps];
};

// The interval of a negative's score s (dtype S): the number of boundaries b_k <= x, x =
// double(s) - origin, found from s itself. b_k <= x iff s >= t_k, t_k = threshold(b_k, origin)
// (ascending with k), so the interval is the number of thresholds <= s. One formula of S
// arithmetic, never lower for a higher value, puts the scores and the thresholds in the cells
// of a uniform grid (cell()): the thresholds of the cells below a score's are <= it, those of
// the cells above are > it, and a cell's own are compared without a branch (a binary search
// where it has more than kLinearSteps). The grid has kGridCellsPerBound cells per boundary
// over [t_0, t_{n-1}] and two more either side, so that the scores beyond the thresholds
// (clamped into the end cells) rarely share a cell with one.
template <typename S>
struct Intervals {
  int64_t n;
  std::vector<S> thresholds;   // t_0 .. t_{n-1}
  std::vector<int32_t> start;  // per cell, the thresholds in the cells below; then n
  std::unique_ptr<GridCell<S>[]> grid;
  S grid_origin, inv_width, top_cell;  // cell(): the grid's lowest value, 1 / width, top cell

  Intervals(const at::Tensor& bounds, double origin) : n(bounds.numel()), thresholds(n) {
    const double* b = bounds.data_ptr<double>();
    at::parallel_for(0, n, kGridGrain, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) thresholds[k] = threshold<S>(b[k], origin);
    });
    fill_grid(place_grid());
  }

  // Sets the grid's origin and width (of S arithmetic; t_{n-1} is +inf where a window reaches
  // beyond S's range) and returns its number of cells. Cells are at least a few ulps of the
  // thresholds wide, so that the inverse width is finite, also where every threshold is equal
  // (delta = 0, all positives tied).
  int64_t place_grid() {
    const double largest = std::numeric_limits<S>::max();
    const double lo = thresholds[0], hi = std::min<double>(thresholds[n - 1], largest);
    const int64_t cells = std::min(kGridCellsPerBound * n + 4, kMaxGridCells);
    const double least =
        4 * std::numeric_limits<S>::epsilon() * std::max({1.0, std::abs(lo), std::abs(hi)});
    const double width = std::max((hi - lo) / static_cast<double>(cells - 4), least);
    grid_origin = static_cast<S>(std::max(lo - 2 * width, -largest));
    inv_width = static_cast<S>(1 / width);
    top_cell = static_cast<S>(cells - 1);
    return cells;
  }

  // Sets start and grid over the given number of cells: per cell, the thresholds in the cells
  // below and its own.
  void fill_grid(int64_t cells) {
    std::vector<int32_t> cell_of(n);
    start.assign(cells + 1, 0);
    for (int64_t k = 0; k < n; ++k) ++start[(cell_of[k] = cell(thresholds[k])) + 1];
    for (int64_t c = 1; c <= cells; ++c) start[c] += start[c - 1];
    grid.reset(new GridCell<S>[cells]);
    at::parallel_for(0, cells, kGridGrain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        grid[c].base = start[c];
        std::fill_n(grid[c].t, kLinearSteps, std::numeric_limits<S>::infinity());
      }
    });
    // Each cell's thresholds, in order; base -1 where it has more than kLinearSteps.
    for (int64_t k = 0; k < n; ++k) {
      GridCell<S>& g = grid[cell_of[k]];
      const int64_t i = k - start[cell_of[k]];
      if (i < kLinearSteps) g.t[i] = thresholds[k];
      if (i == kLinearSteps) g.base = -1;
    }
  }

  // The cell of a score or threshold: branch-free, so that a loop of it vectorises.
  inline int32_t cell(S s) const {
    S c = (s - grid_origin) * inv_width;
    c = c > static_cast<S>(0) ? c : static_cast<S>(0);
    c = c < top_cell ? c : top_cell;
    return static_cast<int32_t>(c);
  }

  // The number of thresholds <= s, for s in cell c.
  inline int64_t locate(S s, int32_t c) const {
    const GridCell<S>& g = grid[c];
    if (__builtin_expect(g.base < 0, 0)) {
      const S* t = thresholds.data();
      return std::upper_bound(t + start[c], t + start[c + 1], s) - t;
    }
    int64_t k = g.base;
    for (int step = 0; step < kLinearSteps; ++step) k += s >= g.t[step];
    return k;
  }

  // The interval of a negative's score s, or -1 where it is not binned: in interval 0 (below
  // every boundary) with skip_irrelevant.
  inline int64_t bin(S s, bool skip_irrelevant) const {
    const int64_t k = locate(s, cell(s));
    return k == 0 && skip_irrelevant ? -1 : k;
  }
};

// The boundaries: at least 2, fewer than 2^31 (Intervals counts them in int32), finite (each
// one's threshold is found by a search that a NaN or an infinity would not end).
void check_bounds(const at::Tensor& bounds) {
  const int64_t n = bounds.numel();
  TORCH_CHECK(bounds.scalar_type() == at::kDouble && bounds.is_contiguous() && n >= 2 &&
                  n < std::numeric_limits<int32_t>::max(),
              "ranking_cpu: bounds must be contiguous float64 with 2 to 2^31 - 2 entries");
  const double* b = bounds.data_ptr<double>();
  TORCH_CHECK(std::all_of(b, b + n, [](double v) { return std::isfinite(v); }),
              "ranking_cpu: bounds must be finite");
}

// The number of j in [0, len) with key[j] >= lowest; 16 keys at a time where SSE2 is there.
inline int64_t count_keys_at_least(const uint8_t* key, int64_t len, uint8_t lowest) {
  int64_t j = 0, count = 0;
#if defined(__SSE2__)
  const __m128i low = _mm_set1_epi8(static_cast<char>(lowest)), one = _mm_set1_epi8(1);
  __m128i sums = _mm_setzero_si128();
  for (; j + 16 <= len; j += 16) {
    const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + j));
    const __m128i at_least = _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(k, low), k), one);
    sums = _mm_add_epi64(sums, _mm_sad_epu8(at_least, _mm_setzero_si128()));
  }
  count = _mm_cvtsi128_si64(sums) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(sums, sums));
#endif
  for (; j < len; ++j) count += key[j] >= lowest;
  return count;
}

// Writes to out, ascending, every j in [0, len <= kChunk) with key[j] >= lowest, and returns
// their number; asks for the cache lines of their scores meanwhile (read next, at random). Reads
// the keys 16 at a time where SSE2 is there.
template <typename S>
inline int64_t keys_at_least(const uint8_t* key, int64_t len, uint8_t lowest, const S* scores,
                             uint16_t* out) {
  int64_t j = 0, count = 0;
#if defined(__SSE2__)
  // Unsigned key >= lowest iff max(key, lowest) == key.
  const __m128i low = _mm_set1_epi8(static_cast<char>(lowest));
  for (; j + 16 <= len; j += 16) {
    const __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + j));
    uint32_t mask = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(k, low), k));
    if (!mask) continue;
    __builtin_prefetch(scores + j + __builtin_ctz(mask));
    __builtin_prefetch(scores + j + 31 - __builtin_clz(mask));
    while (mask) {
      out[count++] = static_cast<uint16_t>(j + __builtin_ctz(mask));
      mask &= mask - 1;
    }
  }
#endif
  for (; j < len; ++j)
    if (key[j] >= lowest) out[count++] = static_cast<uint16_t>(j);
  return count;
}

}  // namespace

// Returns (stats, pos_index, keys, chunk_max): stats float64 [all scores finite (1/0), label
// min, label max, number of positives] (min and max are exact only when some label is out of
// range; otherwise -1 and 1), pos_index int64 ascending, keys uint8 per logit, chunk_max uint8
// per chunk of kChunk logits (its largest key).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> scan(const at::Tensor& scores,
                                                                const at::Tensor& labels) {
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(labels, "labels", m);
  std::vector<uint8_t> bad_score(chunks, 0), bad_label(chunks, 0);
  std::vector<std::vector<int64_t>> positives(chunks);
  at::Tensor keys = at::empty({m}, scores.options().dtype(at::kByte));
  at::Tensor chunk_max = at::empty({chunks}, scores.options().dtype(at::kByte));
  uint8_t* key = keys.data_ptr<uint8_t>();
  uint8_t* top = chunk_max.data_ptr<uint8_t>();
  double lab_min = -1, lab_max = 1;
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_labels(labels, [&](auto l_tag) {
      using L = decltype(l_tag);
      const S* s = scores.data_ptr<S>();
      const L* t = reinterpret_cast<const L*>(labels.data_ptr());
      at::parallel_for(0, chunks, kGrain, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t j0 = c * kChunk, j1 = std::min(m, j0 + kChunk);
          const RunScan r = scan_run_best(s + j0, t + j0, key + j0, j1 - j0, j0, positives[c]);
          bad_score[c] = r.bad & 1;
          bad_label[c] = r.bad >> 1;
          top[c] = r.highest;
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
  return {stats, pos_index, keys, chunk_max};
}

using Selection = std::tuple<at::Tensor, at::Tensor>;

// The intervals of a dense chunk's len logits (scores s, keys key) to out, the dummy n + 1
// where a logit is not binned (its key below lowest, or in interval 0 with skip_irrelevant):
// every logit is looked up, without a branch on its key. The grid cells first (a vectorised
// loop, to cell_of), then the thresholds.
template <typename S, typename I>
void dense_intervals(const Intervals<S>& iv, const S* s, const uint8_t* key, int64_t len,
                     uint8_t lowest, bool skip_irrelevant, I* out, int32_t* cell_of) {
  const int64_t first_binned = skip_irrelevant ? 1 : 0, dummy = iv.n + 1;
  for (int64_t j = 0; j < len; ++j) cell_of[j] = iv.cell(s[j]);
  for (int64_t j = 0; j < len; ++j) {
    const int64_t k = iv.locate(s[j], cell_of[j]);
    const bool binned = (key[j] >= lowest) & (k >= first_binned);
    out[j] = static_cast<I>(binned ? k : dummy);
  }
}

// Adds a dense chunk's len logits (scores s, intervals interval) to the pairs h of their
// intervals: (count, sum of score - origin).
template <typename S, typename I>
void add_dense(const S* s, const I* interval, int64_t len, double origin, double* h) {
  for (int64_t j = 0; j < len; ++j) {
    const int64_t k = interval[j];
    h[2 * k] += 1.0;
    h[2 * k + 1] += static_cast<double>(s[j]) - origin;
  }
}

// Adds to count[k] and moment[k], for k < bins, bin k's pair of each dense part (each p with
// dense_part[p], its pairs from partial + p * stride on), in the order of the parts. The bins
// are split among the threads: each bin's sum is the same for any number of them.
void add_parts(const double* partial, const std::vector<uint8_t>& dense_part, int64_t stride,
               int64_t bins, double* count, double* moment) {
  at::parallel_for(0, bins, kCombineGrain, [&](int64_t k0, int64_t k1) {
    for (size_t p = 0; p < dense_part.size(); ++p) {
      if (!dense_part[p]) continue;
      const double* h = partial + p * stride;
      for (int64_t k = k0; k < k1; ++k) {
        count[k] += h[2 * k];
        moment[k] += h[2 * k + 1];
      }
    }
  });
}

// Returns (hist, (counts, entries)): hist float64 (2, n + 2), per interval 0 .. n and a zero
// dummy bin n + 1, the sums over the binned negatives of 1 and of x = score - origin; entries
// (M, ) int16 read as uint16 (int32 when n + 2 > 65535) and per chunk c of kChunk logits from
// entry c * kChunk on, either counts[c] (int32) binned negatives as pairs (chunk-local offset,
// interval), or counts[c] = -1 (a dense chunk) and the interval of every logit of the chunk,
// the dummy n + 1 where it is not binned. With skip_irrelevant the negatives of interval 0 are
// not binned, and neither read where their key shows it.
std::tuple<at::Tensor, Selection> histogram(const at::Tensor& scores,
                                            std::tuple<at::Tensor, at::Tensor> scan_state,
                                            double origin, const at::Tensor& bounds,
                                            bool skip_irrelevant) {
  const at::Tensor& keys = std::get<0>(scan_state);
  const at::Tensor& chunk_max = std::get<1>(scan_state);
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(keys, "keys", m, at::kByte);
  check_vector(chunk_max, "chunk_max", chunks, at::kByte);
  check_bounds(bounds);
  const int64_t bins = bounds.numel() + 1, dummy = bounds.numel() + 1;
  const double first = bounds.data_ptr<double>()[0];
  const uint8_t lowest = skip_irrelevant ? lowest_key_from(origin + first) : kLowestNegative;
  at::Tensor counts = at::empty({chunks}, scores.options().dtype(at::kInt));
  at::Tensor entries =
      at::empty({m}, scores.options().dtype(dummy <= 65535 ? at::kShort : at::kInt));
  // The dense chunks are summed per part of the logits (parts of whole chunks, their number
  // fixed by M and n alone, at most kParts and about 8 MB of partial sums), then over the parts
  // in order; the binned negatives of the sparse chunks after them, chunk by chunk in order,
  // from the entries.
  const int64_t max_parts =
      std::max<int64_t>(1, std::min<int64_t>(kParts, (8 << 20) / (bins * 16)));
  const int64_t parts = std::max<int64_t>(1, std::min(chunks, max_parts));
  const int64_t part_chunks = (chunks + parts - 1) / parts;
  // partial[p][k] = (count, moment) of part p, interleaved: one bin, one cache line; then the
  // dummy bin's pair, which takes what is not binned in a dense chunk. Made when the first dense
  // chunk is binned; each part sets its own pairs to zero when it first bins a dense chunk (and
  // marks dense_part), so that no thread writes the whole 8 MB.
  const int64_t stride = 2 * (bins + 1);
  std::unique_ptr<double[]> partial;
  std::once_flag partial_made;
  std::vector<uint8_t> dense_part(parts, 0);
  // The shifted scores of each part's sparse binned negatives, in order (read in order after the
  // pass, where their scores would be read again at random).
  std::vector<std::vector<double>> sparse_x(parts);
  const uint8_t* key = keys.data_ptr<uint8_t>();
  const uint8_t* top = chunk_max.data_ptr<uint8_t>();
  int32_t* count_of = counts.data_ptr<int32_t>();
  at::Tensor hist = at::zeros({2, bins + 1}, scores.options().dtype(at::kDouble));
  double* count = hist.data_ptr<double>();
  double* moment = count + bins + 1;
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    const Intervals<S> iv(bounds, origin);
    dispatch_index(entries, [&](auto i_tag) {
      using I = decltype(i_tag);
      const S* s = scores.data_ptr<S>();
      I* entry_of = reinterpret_cast<I*>(entries.data_ptr());
      const int64_t grain = std::max<int64_t>(1, (kGrain + part_chunks - 1) / part_chunks);
      at::parallel_for(0, parts, grain, [&](int64_t p0, int64_t p1) {
        std::vector<uint16_t> candidates(kChunk);
        std::vector<int32_t> cell_of(kChunk);
        for (int64_t p = p0; p < p1; ++p) {
          double* h = nullptr;  // the part's pairs, from its first dense chunk on
          const int64_t c1 = std::min(chunks, (p + 1) * part_chunks);
          for (int64_t c = p * part_chunks; c < c1; ++c) {
            const int64_t j0 = c * kChunk, len = std::min(m, j0 + kChunk) - j0;
            const uint8_t* ck = key + j0;
            const S* cs = s + j0;
            if (top[c] < lowest) {  // no negative of the chunk can be binned
              count_of[c] = 0;
              continue;
            }
            I* out = entry_of + j0;
            // Dense: every logit's interval, then the sums (two loops, so that the grid and the
            // pairs do not evict each other); what is not binned goes to the dummy's pair.
            auto bin_densely = [&]() {
              if (!h) {
                std::call_once(partial_made, [&] { partial.reset(new double[parts * stride]); });
                h = partial.get() + p * stride;
                std::fill(h, h + stride, 0.0);
                dense_part[p] = 1;
              }
              dense_intervals(iv, cs, ck, len, lowest, skip_irrelevant, out, cell_of.data());
              add_dense(cs, out, len, origin, h);
              count_of[c] = -1;
            };
            const int64_t sample = std::min(len, kDenseSample);
            if (4 * count_keys_at_least(ck, sample, lowest) > sample) {
              bin_densely();
              continue;
            }
            const int64_t found = keys_at_least(ck, len, lowest, cs, candidates.data());
            if (2 * found > len) {  // the pairs would not fit in the chunk's entries
              bin_densely();
              continue;
            }
            int32_t binned = 0;
            for (int64_t e = 0; e < found; ++e) {
              const uint16_t i = candidates[e];
              const int64_t k = iv.bin(cs[i], skip_irrelevant);
              if (k < 0) continue;
              sparse_x[p].push_back(static_cast<double>(cs[i]) - origin);
              out[2 * binned] = static_cast<I>(i);
              out[2 * binned + 1] = static_cast<I>(k);
              ++binned;
            }
            count_of[c] = binned;
          }
        }
      });
      if (partial) add_parts(partial.get(), dense_part, stride, bins, count, moment);
      for (int64_t p = 0; p < parts; ++p) {
        const double* x = sparse_x[p].data();
        for (int64_t c = p * part_chunks; c < std::min(chunks, (p + 1) * part_chunks); ++c) {
          const I* entry = entry_of + c * kChunk;
          for (int32_t e = 0; e < count_of[c]; ++e) {
            const int64_t k = entry[2 * e + 1];
            count[k] += 1.0;
            moment[k] += *x++;
          }
        }
      }
    });
  });
  return {hist, Selection{counts, entries}};
}

// The gradient on every logit, in the dtype of scores: offset[k] + slope[k] * (score - origin)
// on the binned negatives of the selection (k their interval), 0 elsewhere (offset and slope are
// 0 in the dummy interval and in interval 0), then pos_grad[i] at pos_index[i].
at::Tensor gradient(const at::Tensor& scores, Selection selection, double origin,
                    const at::Tensor& offset, const at::Tensor& slope,
                    const at::Tensor& pos_index, const at::Tensor& pos_grad) {
  const at::Tensor& counts = std::get<0>(selection);
  const at::Tensor& entries = std::get<1>(selection);
  const int64_t m = scores.numel(), chunks = num_chunks(m);
  check_vector(scores, "scores", m);
  check_vector(counts, "counts", chunks, at::kInt);
  check_vector(entries, "entries", m);
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
  const int32_t* count_of = counts.data_ptr<int32_t>();
  at::Tensor grad = at::empty_like(scores);
  dispatch_scores(scores, [&](auto s_tag) {
    using S = decltype(s_tag);
    dispatch_index(entries, [&](auto i_tag) {
      using I = decltype(i_tag);
      const S* s = scores.data_ptr<S>();
      const I* entry_of = reinterpret_cast<const I*>(entries.data_ptr());
      S* g = grad.data_ptr<S>();
      auto value = [&](int64_t j, int64_t k) {
        k = std::min<int64_t>(k, bins - 1);
        return static_cast<S>((static_cast<double>(s[j]) - origin) * b[k] + a[k]);
      };
      at::parallel_for(0, chunks, kGrain, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t j0 = c * kChunk, len = std::min(m, j0 + kChunk) - j0;
          const I* entry = entry_of + j0;
          if (count_of[c] < 0) {
            for (int64_t i = 0; i < len; ++i) g[j0 + i] = value(j0 + i, entry[i]);
            continue;
          }
          std::fill(g + j0, g + j0 + len, static_cast<S>(0));
          for (int32_t e = 0; e < count_of[c]; ++e) __builtin_prefetch(s + j0 + entry[2 * e]);
          for (int32_t e = 0; e < count_of[c]; ++e) {
            const int64_t j = j0 + entry[2 * e];
            g[j] = value(j, entry[2 * e + 1]);
          }
        }
      });
      const int64_t* pi = pos_index.data_ptr<int64_t>();
      const double* pg = pos_grad.data_ptr<double>();
      for (int64_t i = 0; i < pos_index.numel(); ++i) g[pi[i]] = static_cast<S>(pg[i]);
    });
  });
  return grad;
}

// The stable ascending order of n finite values, written to out, from their order_bits (-0.0
// becomes 0.0 first, so that they tie): where the values are at most kMergedRuns ascending runs
// (scores already in order are one), stable merges of the runs in order; otherwise an LSD radix
// sort, a byte a pass (a pass is skipped where every image has the same byte), stable like every
// pass.
template <typename S>
void radix_argsort(const S* values, int64_t n, int64_t* out) {
  using U = OrderBits<S>;
  constexpr int kBytes = sizeof(U);
  std::vector<U> key(n), next_key(n);
  std::vector<int32_t> index(n), next_index(n);
  std::vector<int64_t> counts(kBytes * 256, 0);
  for (int64_t i = 0; i < n; ++i) {
    const U u = order_bits(values[i] + static_cast<S>(0));
    key[i] = u;
    index[i] = static_cast<int32_t>(i);
    for (int b = 0; b < kBytes; ++b) ++counts[b * 256 + ((u >> (8 * b)) & 255)];
  }
  std::vector<int64_t> run_ends;
  for (int64_t i = 1; i < n && static_cast<int64_t>(run_ends.size()) < kMergedRuns; ++i)
    if (key[i] < key[i - 1]) run_ends.push_back(i);
  if (static_cast<int64_t>(run_ends.size()) < kMergedRuns) {
    run_ends.push_back(n);
    auto by_key = [&](int32_t a, int32_t b) { return key[a] < key[b]; };
    for (size_t r = 1; r < run_ends.size(); ++r)
      std::inplace_merge(index.begin(), index.begin() + run_ends[r - 1],
                         index.begin() + run_ends[r], by_key);
    std::copy(index.begin(), index.end(), out);
    return;
  }
  for (int b = 0; b < kBytes && n > 0; ++b) {
    int64_t* count = counts.data() + b * 256;
    if (count[(key[0] >> (8 * b)) & 255] == n) continue;
    int64_t start = 0;  // the counts become each byte's first position
    for (int d = 0; d < 256; ++d) {
      const int64_t here = count[d];
      count[d] = start;
      start += here;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t to = count[(key[i] >> (8 * b)) & 255]++;
      next_key[to] = key[i];
      next_index[to] = index[i];
    }
    key.swap(next_key);
    index.swap(next_index);
  }
  std::copy(index.begin(), index.end(), out);
}

// The stable ascending order of values (1-D, float32 or float64, finite), int64: the indices of
// torch.sort(values, stable=True) (-0.0 and 0.0 tie), in O(n) on the calling thread.
at::Tensor argsort(const at::Tensor& values) {
  check_vector(values, "values", values.numel());
  TORCH_CHECK(values.numel() < std::numeric_limits<int32_t>::max(),
              "ranking_cpu: argsort takes fewer than 2^31 values");
  at::Tensor order = at::empty({values.numel()}, values.options().dtype(at::kLong));
  dispatch_scores(values, [&](auto s_tag) {
    using S = decltype(s_tag);
    radix_argsort(values.data_ptr<S>(), values.numel(), order.data_ptr<int64_t>());
  });
  return order;
}

// The boundaries and counts of the positives' windows (alrp_core/intervals.py, window_geometry,
// the reference) from their ascending shifted centres c (float64) and delta: the 2P boundaries
// lo_i = c_i - delta and hi_i = c_i + delta in ascending order, the number of boundaries <= lo_i
// and then <= hi_i (shape (2P, )), and the number of centres < lo_i (row 0) and < hi_i (row 1).
// As lo, hi and c ascend, every count is a pointer that only moves on: one walk, O(P).
std::tuple<at::Tensor, at::Tensor, at::Tensor> window_geometry(const at::Tensor& centres,
                                                               double delta) {
  const int64_t num = centres.numel();
  check_vector(centres, "centres", num, at::kDouble);
  const double* c = centres.data_ptr<double>();
  std::vector<double> lo(num), hi(num);
  for (int64_t i = 0; i < num; ++i) {
    lo[i] = c[i] - delta;
    hi[i] = c[i] + delta;
  }
  at::Tensor bounds = at::empty({2 * num}, centres.options());
  at::Tensor bound_counts = at::empty({2 * num}, centres.options().dtype(at::kLong));
  at::Tensor below = at::empty({2, num}, centres.options().dtype(at::kLong));
  std::merge(lo.begin(), lo.end(), hi.begin(), hi.end(), bounds.data_ptr<double>());
  int64_t* count = bound_counts.data_ptr<int64_t>();
  int64_t* centres_below = below.data_ptr<int64_t>();
  for (const std::vector<double>* side : {&lo, &hi}) {
    int64_t lo_at_or_below = 0, hi_at_or_below = 0, centres_under = 0;
    for (const double x : *side) {
      while (lo_at_or_below < num && lo[lo_at_or_below] <= x) ++lo_at_or_below;
      while (hi_at_or_below < num && hi[hi_at_or_below] <= x) ++hi_at_or_below;
      while (centres_under < num && c[centres_under] < x) ++centres_under;
      *count++ = lo_at_or_below + hi_at_or_below;
      *centres_below++ = centres_under;
    }
  }
  return {bounds, bound_counts, below};
}

// Checks the positives' window data of relation_sums and spread: ascending (P, ) int64 a
// permutation's values in [0, P), lo (P, ) float64, window (2P, ) int64 k_lo then k_hi (each
// non-decreasing, in [0, bins - 1)).
void check_windows(const at::Tensor& ascending, const at::Tensor& lo, const at::Tensor& window,
                   int64_t bins) {
  const int64_t num = ascending.numel();
  check_vector(ascending, "ascending", num, at::kLong);
  check_vector(lo, "lo", num, at::kDouble);
  check_vector(window, "window", 2 * num, at::kLong);
  const int64_t* a = ascending.data_ptr<int64_t>();
  const int64_t* k = window.data_ptr<int64_t>();
  for (int64_t i = 0; i < num; ++i)
    TORCH_CHECK(a[i] >= 0 && a[i] < num, "ranking_cpu: ascending must lie in [0, ", num, ")");
  for (int64_t i = 0; i < 2 * num; ++i)
    TORCH_CHECK(k[i] >= 0 && k[i] < bins - 1 && (i % num == 0 || k[i] >= k[i - 1]),
                "ranking_cpu: window must hold non-decreasing k_lo and k_hi in [0, ", bins - 1,
                ")");
}

// sum_j v_j H(x_j - s_i) for every positive i, in index order (out[ascending[j]] for the j-th
// lowest), from hist (2, bins) float64, the per-interval sums of v (row 0) and v * x (row 1),
// and the windows: k_lo, k_hi (window) and lo_i = c_i - delta of the positives in ascending
// order. The sums below interval k leave out interval 0 (its scores may lie arbitrarily far
// below) and read no moment of interval 2P (alrp_core/intervals.py's relation_sums, the
// reference).
at::Tensor relation_sums(const at::Tensor& hist, const at::Tensor& ascending, const at::Tensor& lo,
                         const at::Tensor& window, double delta) {
  TORCH_CHECK(hist.device().is_cpu() && hist.dim() == 2 && hist.size(0) == 2 &&
                  hist.is_contiguous() && hist.scalar_type() == at::kDouble,
              "ranking_cpu: hist must be a contiguous (2, bins) float64 CPU tensor");
  const int64_t num = ascending.numel(), bins = hist.size(1);
  TORCH_CHECK(bins == 2 * num + 2, "ranking_cpu: hist must have 2P + 2 bins");
  check_windows(ascending, lo, window, bins);
  const double* count = hist.data_ptr<double>();
  const double* moment = count + bins;
  // prefix[k]: the sums over the intervals 1 .. k - 1 (k >= 1; prefix[0] = 0), k <= 2P.
  std::vector<double> prefix_count(bins - 1, 0.0), prefix_moment(bins - 1, 0.0);
  for (int64_t k = 2; k < bins - 1; ++k) {
    prefix_count[k] = prefix_count[k - 1] + count[k - 1];
    prefix_moment[k] = prefix_moment[k - 1] + moment[k - 1];
  }
  // Every binned score at or above lo_0: the intervals 1 .. 2P.
  const double total = prefix_count[bins - 2] + count[bins - 2];
  const int64_t* a = ascending.data_ptr<int64_t>();
  const int64_t* k_lo = window.data_ptr<int64_t>();
  const int64_t* k_hi = k_lo + num;
  const double* l = lo.data_ptr<double>();
  at::Tensor out = at::empty({num}, hist.options());
  double* o = out.data_ptr<double>();
  for (int64_t j = 0; j < num; ++j) {
    double value = total - prefix_count[k_hi[j]];
    if (delta > 0) {
      const double inside = prefix_count[k_hi[j]] - prefix_count[k_lo[j]];
      const double inside_moment = prefix_moment[k_hi[j]] - prefix_moment[k_lo[j]];
      value += (inside_moment - l[j] * inside) / (2 * delta);
    }
    o[a[j]] = value;
  }
  return out;
}

// The negatives' gradient coefficients of per-positive weights w (P, ) float64, index order:
// A (row 0) and B (row 1), (2, bins) float64, with sum_i w_i H(x - s_i) = A[k] + B[k] x for a
// score x in interval k, A = B = 0 in interval 0 and the dummy bin (alrp_core/intervals.py's
// spread, the reference). A positive's window starts at interval k_lo and ends at k_hi; from the
// prefix sums of w and w * lo in ascending order, the positives whose window has started
// (ended) by interval k are the first ones, two pointers that only move on.
at::Tensor spread(const at::Tensor& weights, const at::Tensor& ascending, const at::Tensor& lo,
                  const at::Tensor& window, int64_t bins, double delta) {
  const int64_t num = ascending.numel();
  check_vector(weights, "weights", num, at::kDouble);
  TORCH_CHECK(bins == 2 * num + 2, "ranking_cpu: spread needs 2P + 2 bins");
  check_windows(ascending, lo, window, bins);
  const double* w = weights.data_ptr<double>();
  const int64_t* a = ascending.data_ptr<int64_t>();
  const int64_t* k_lo = window.data_ptr<int64_t>();
  const int64_t* k_hi = k_lo + num;
  const double* l = lo.data_ptr<double>();
  std::vector<double> sum_w(num + 1, 0.0), sum_wl(num + 1, 0.0);
  for (int64_t j = 0; j < num; ++j) {
    const double v = w[a[j]];
    sum_w[j + 1] = sum_w[j] + v;
    sum_wl[j + 1] = sum_wl[j] + v * l[j];
  }
  at::Tensor out = at::empty({2, bins}, weights.options());
  double* offset = out.data_ptr<double>();
  double* slope = offset + bins;
  for (int64_t k = 0, started = 0, ended = 0; k < bins; ++k) {
    while (started < num && k_lo[started] <= k) ++started;
    while (ended < num && k_hi[ended] <= k) ++ended;
    if (delta == 0) {
      offset[k] = sum_w[ended];
      slope[k] = 0;
    } else {
      const double inside_w = (sum_w[started] - sum_w[ended]) / (2 * delta);
      const double inside_wl = (sum_wl[started] - sum_wl[ended]) / (2 * delta);
      offset[k] = sum_w[ended] - inside_wl;
      slope[k] = inside_w;
    }
  }
  offset[bins - 1] = slope[bins - 1] = 0;
  return out;
}

// Sums over dominated positives: out[(r * num + i) * W + w] is the sum of col[k * W + w] over
// the positives k < counts[r][i] (in score order) with key[k] < key[i], keys in 1 .. num, for
// the counts lo (r = 0) and hi (r = 1), which do not decrease with i (the windows of ascending
// scores). Per row, one sweep over k with a Fenwick tree over the keys, the queries of count c
// answered in order before row c enters the tree: O(num log num); the two rows on two threads
// where there are two. W columns, so that the sums stay in registers.
template <int W>
std::vector<double> dominated_sums(const double* col, const std::vector<int64_t>& key,
                                   const int64_t* lo, const int64_t* hi) {
  const int64_t num = static_cast<int64_t>(key.size());
  std::vector<double> out(2 * num * W);
  at::parallel_for(0, 2, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> tree((num + 1) * W);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t* count = r ? hi : lo;
      double* __restrict__ tr = tree.data();
      double* __restrict__ sums = out.data() + r * num * W;
      std::fill(tree.begin(), tree.end(), 0.0);
      for (int64_t c = 0, i = 0;; ++c) {
        for (; i < num && count[i] == c; ++i) {
          double sum[W] = {};
          for (int64_t t = key[i] - 1; t > 0; t -= t & -t)
            for (int w = 0; w < W; ++w) sum[w] += tr[t * W + w];
          std::copy(sum, sum + W, sums + i * W);
        }
        if (c == num) break;
        for (int64_t t = key[c]; t <= num; t += t & -t)
          for (int w = 0; w < W; ++w) tr[t * W + w] += col[c * W + w];
      }
    }
  });
  return out;
}

// The positives in ascending IoU order (ties in score order) and their dense ranks (equal
// IoUs, equal rank; a smaller IoU, a smaller rank).
struct IoURanks {
  std::vector<int64_t> order, rank;

  IoURanks(const double* ious, int64_t n) : order(n), rank(n) {
    radix_argsort(ious, n, order.data());
    for (int64_t e = 0, r = 0; e < n; ++e) {
      if (e > 0 && ious[order[e]] != ious[order[e - 1]]) ++r;
      rank[order[e]] = r;
    }
  }

  // out[i * W + w]: the sum of col[k * W + w] over every k with a smaller rank than i's.
  template <int W>
  std::vector<double> below(const double* col) const {
    const int64_t n = static_cast<int64_t>(order.size());
    std::vector<double> out(n * W);
    double run[W] = {}, sum[W] = {};  // the sums before the current run of equal ranks
    for (int64_t e = 0; e < n; ++e) {
      const int64_t k = order[e];
      if (e > 0 && rank[k] != rank[order[e - 1]]) std::copy(sum, sum + W, run);
      std::copy(run, run + W, out.data() + k * W);
      for (int w = 0; w < W; ++w) sum[w] += col[k * W + w];
    }
    return out;
  }
};

// sum_k v_k H(s_k - s_i) over a set of positives from the set's sums below the window counts:
// of v (below lo_i, below hi_i, in all) and of v * s (below lo_i, below hi_i). The positives from
// hi_i on have H = 1, those in [lo_i, hi_i) the linear part (s_k - s_i + delta) / (2 delta).
inline double window_sum(double v_lo, double v_hi, double v_all, double vs_lo, double vs_hi,
                         double s, double delta) {
  const double above = v_all - v_hi;
  if (delta == 0) return above;
  return above + ((v_hi - v_lo) * (delta - s) + (vs_hi - vs_lo)) / (2 * delta);
}

// Rank & Sort Loss's steps among its P >= 1 positives (alrp_core/rank_sort_loss.py's
// rank_sort_errors, the reference, gives the formulas): from their ascending shifted scores s,
// IoU targets y and FP(i) (each (P, ) float64, in score order) and the window counts lo, hi
// ((2, P) int64; not given: the scores < s_i -/+ delta for delta > 0, <= s_i and < s_i for
// delta = 0), returns the mean ranking and sorting errors (2, ) and, per positive, the
// negatives' weight, the ranking and the sorting gradient (3, P), float64, each divided by P.
// rank+ and the sums of H (1 - y) over every positive come from prefix sums in score order;
// those over the positives below y_i, and the spread of the sorting error back to them, from
// Fenwick sweeps over the IoU ranks: O(P log P).
std::tuple<at::Tensor, at::Tensor> rank_sort_errors(const at::Tensor& scores,
                                                    const at::Tensor& ious, const at::Tensor& fp,
                                                    double delta, double eps,
                                                    const c10::optional<at::Tensor>& counts) {
  const int64_t num = scores.numel();
  TORCH_CHECK(num >= 1, "ranking_cpu: rank_sort_errors needs at least one positive");
  check_vector(scores, "scores", num, at::kDouble);
  check_vector(ious, "ious", num, at::kDouble);
  check_vector(fp, "fp", num, at::kDouble);
  TORCH_CHECK(delta >= 0 && eps >= 0, "ranking_cpu: delta and eps must be >= 0");
  const double* s = scores.data_ptr<double>();
  std::vector<int64_t> lo(num), hi(num);
  if (counts.has_value()) {
    const at::Tensor& given = *counts;
    TORCH_CHECK(given.device().is_cpu() && given.dim() == 2 && given.size(0) == 2 &&
                    given.size(1) == num && given.is_contiguous() &&
                    given.scalar_type() == at::kLong,
                "ranking_cpu: counts must be a contiguous (2, ", num, ") int64 CPU tensor");
    const int64_t* c = given.data_ptr<int64_t>();
    for (int64_t i = 0; i < num; ++i) {
      TORCH_CHECK(c[i] >= 0 && c[i] <= c[num + i] && c[num + i] <= num,
                  "ranking_cpu: counts must hold 0 <= lo <= hi <= ", num);
      TORCH_CHECK(i == 0 || (c[i] >= c[i - 1] && c[num + i] >= c[num + i - 1]),
                  "ranking_cpu: counts must not decrease (the windows of ascending scores)");
      lo[i] = c[i];
      hi[i] = c[num + i];
    }
  } else {
    // Pointers that only move on, as the scores ascend.
    for (int64_t i = 0, a = 0, b = 0; i < num; ++i) {
      if (delta > 0) {
        while (a < num && s[a] < s[i] - delta) ++a;
        while (b < num && s[b] < s[i] + delta) ++b;
      } else {
        while (a < num && s[a] <= s[i]) ++a;
        while (b < num && s[b] < s[i]) ++b;
      }
      lo[i] = a;
      hi[i] = b;
    }
  }
  const double* y = ious.data_ptr<double>();
  const double* f = fp.data_ptr<double>();
  const IoURanks by_iou(y, num);
  std::vector<int64_t> below_key(num), above_key(num);
  for (int64_t i = 0; i < num; ++i) {
    below_key[i] = by_iou.rank[i] + 1;
    above_key[i] = num - by_iou.rank[i];
  }
  // Every positive's row 1, s, w = 1 - y, w * s; prefix[c] the sum of the first c rows.
  std::vector<double> rows(4 * num), prefix(4 * (num + 1), 0.0);
  for (int64_t k = 0; k < num; ++k) {
    const double w = 1 - y[k];
    const double row[4] = {1.0, s[k], w, w * s[k]};
    for (int v = 0; v < 4; ++v) {
      rows[4 * k + v] = row[v];
      prefix[4 * (k + 1) + v] = prefix[4 * k + v] + row[v];
    }
  }
  const std::vector<double> lower =
      dominated_sums<4>(rows.data(), below_key, lo.data(), hi.data());
  const std::vector<double> lower_all = by_iou.below<4>(rows.data());
  at::Tensor errors = at::empty({2}, scores.options());
  at::Tensor per_positive = at::empty({3, num}, scores.options());
  double* neg_weight = per_positive.data_ptr<double>();
  double* rank_grad = neg_weight + num;
  double* sort_grad = rank_grad + num;
  std::vector<double> spread(2 * num);
  double ranking_sum = 0, sorting_sum = 0;
  for (int64_t i = 0; i < num; ++i) {
    const double* at_lo = prefix.data() + 4 * lo[i];
    const double* at_hi = prefix.data() + 4 * hi[i];
    const double* total = prefix.data() + 4 * num;
    const double* l_lo = lower.data() + 4 * i;
    const double* l_hi = lower.data() + 4 * (num + i);
    const double* l_all = lower_all.data() + 4 * i;
    // Sums of H and of H (1 - y): over every positive, over those below y_i.
    const double rank_pos = window_sum(at_lo[0], at_hi[0], total[0], at_lo[1], at_hi[1], s[i],
                                       delta);
    const double current = window_sum(at_lo[2], at_hi[2], total[2], at_lo[3], at_hi[3], s[i],
                                      delta);
    const double missorted = window_sum(l_lo[0], l_hi[0], l_all[0], l_lo[1], l_hi[1], s[i],
                                         delta);
    const double current_missorted = window_sum(l_lo[2], l_hi[2], l_all[2], l_lo[3], l_hi[3],
                                                s[i], delta);
    const double ranking_error = f[i] / (rank_pos + f[i]);
    // The positives with y_k >= y_i: all but the mis-sorted ones.
    const double sorting_error =
        current / rank_pos - (current - current_missorted) / (rank_pos - missorted);
    ranking_sum += ranking_error;
    sorting_sum += sorting_error;
    const bool ranked = f[i] > eps, sorted = missorted > eps;
    neg_weight[i] = (ranked ? ranking_error / f[i] : 0.0) / num;
    rank_grad[i] = (ranked ? -ranking_error : 0.0) / num;
    sort_grad[i] = (sorted ? -sorting_error : 0.0) / num;
    const double c = (sorted ? sorting_error / missorted : 0.0) / num;
    spread[2 * i] = c;
    spread[2 * i + 1] = c * s[i];
  }
  // sum over i with y_i > y_k of c_i H(s_k - s_i): the positives i before lo_k have H = 1, those
  // in [lo_k, hi_k) (s_k - s_i + delta) / (2 delta).
  const std::vector<double> upper =
      dominated_sums<2>(spread.data(), above_key, lo.data(), hi.data());
  for (int64_t k = 0; k < num; ++k) {
    const double* u_lo = upper.data() + 2 * k;
    const double* u_hi = upper.data() + 2 * (num + k);
    double spread_to_k = u_lo[0];
    if (delta > 0)
      spread_to_k += ((u_hi[0] - u_lo[0]) * (s[k] + delta) - (u_hi[1] - u_lo[1])) / (2 * delta);
    sort_grad[k] += spread_to_k;
  }
  double* e = errors.data_ptr<double>();
  e[0] = ranking_sum / num;
  e[1] = sorting_sum / num;
  return {errors, per_positive};
}

// Turns the AVX2 scan on (where the CPU has it) or off; returns whether it was on (for tests).
bool set_avx2(bool on) {
  const bool was = use_avx2;
  use_avx2 = on && kHaveAvx2;
  return was;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, mod) {
  mod.doc() = "CPU kernels of alrp_core's bucketed ranking core";
  mod.def("scan", &scan, "validity stats, positive indices, key bytes, each chunk's largest key");
  mod.def("histogram", &histogram, "per-interval sums over the negatives, the binned ones");
  mod.def("gradient", &gradient, "the error-driven gradient on every logit");
  mod.def("window_geometry", &window_geometry, "the boundaries and counts of the windows");
  mod.def("relation_sums", &relation_sums, "per-positive sums over the binned negatives");
  mod.def("spread", &spread, "the negatives' gradient coefficients of per-positive weights");
  mod.def("argsort", &argsort, "the stable ascending order of float32 or float64 values");
  mod.def("rank_sort_errors", &rank_sort_errors, "Rank & Sort Loss's steps among the positives");
  mod.def("set_avx2", &set_avx2, "the AVX2 scan on or off (where the CPU has it); was it on");
  mod.attr("CHUNK") = kChunk;
  mod.attr("LEVELS_PER_UNIT") = kLevelsPerUnit;
}
