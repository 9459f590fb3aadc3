// textclf's CPU LSTM recurrence (see textclf/nn/native_lstm.py).
//
// The input projections of every step are one large matrix product done by the caller; what is
// left is the recurrence. Texts are independent through it, so each thread runs the whole time
// loop for its own rows of the batch and the threads never synchronise; the per-step recurrent
// product is a small brgemm (oneDNN's AMX / AVX-512 micro-kernel, with the weight packed once per
// call) into a float32 accumulator, and the gate arithmetic is float32 throughout. A NaN anywhere in
// the input comes out as NaN (the build has no -ffast-math, and nothing here clamps a NaN away).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

namespace blas = at::native::cpublas;

// exp(x) for |x| <= 87, written so that the gate loops vectorise without -ffast-math (glibc offers
// its vector expf only to -ffast-math code, which may also assume no NaN, while the training loop
// relies on a NaN loss showing): x = n ln2 + r with |r| <= ln2 / 2, Cephes' polynomial for exp(r)
// (about 1 ulp) and 2^n written into the exponent bits. A NaN propagates through the arithmetic.
inline float exp_(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: the sum keeps round(x / ln2) in its low mantissa bits
  const float t = x * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two: r stays exact
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const uint32_t scale = (__builtin_bit_cast(uint32_t, t) - __builtin_bit_cast(uint32_t, kRound) + 127u) << 23;
  return (p * r * r + r + 1.0f) * __builtin_bit_cast(float, scale);
}
inline float sigmoid(float x) {
  x = x < -40.0f ? -40.0f : (x > 40.0f ? 40.0f : x);  // a NaN compares false both times and stays NaN
  return 1.0f / (1.0f + exp_(-x));
}
inline float tanh_(float x) { return 2.0f * sigmoid(2.0f * x) - 1.0f; }

template <typename T>
inline void to_float(const T* in, float* out, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k] = static_cast<float>(in[k]);
}
template <typename T>
inline void from_float(const float* in, T* out, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k] = static_cast<T>(in[k]);
}

constexpr int64_t kBlock = 64;  // brgemm's packed B takes at most 64 columns per block

// Weight w (K, N) row-major, ready for brgemm: column blocks of kBlock, each VNNI-packed where the
// platform packs this dtype (else copied as is, with leading dimension kBlock).
template <typename T>
std::vector<T> prepare_b(const T* w, int64_t K, int64_t N, bool packed) {
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  std::vector<T> out(blocks * K * kBlock, T(0));
  for (int64_t nb = 0; nb < blocks; ++nb) {
    const int64_t n = std::min(kBlock, N - nb * kBlock);
    T* dst = out.data() + nb * K * kBlock;
    if (packed) {
      const auto dt = c10::CppTypeToScalarType<T>::value;
      blas::pack(K, n, N, kBlock, dt, dt, w + nb * kBlock, dst);
    } else {
      for (int64_t k = 0; k < K; ++k) std::copy(w + k * N + nb * kBlock, w + k * N + nb * kBlock + n, dst + k * kBlock);
    }
  }
  return out;
}

// C (M, N; ld_c) += A (M, K; ld_a) @ B, B prepared by prepare_b.
template <typename T>
inline void gemm_acc(int64_t M, int64_t N, int64_t K, const T* A, int64_t ld_a, const T* Bp, float* C, int64_t ld_c,
                     bool packed) {
  for (int64_t nb = 0; nb * kBlock < N; ++nb) {
    const int64_t n = std::min(kBlock, N - nb * kBlock);
    blas::brgemm(M, n, K, ld_a, kBlock, ld_c, true, A, Bp + nb * K * kBlock, C + nb * kBlock, packed);
  }
}

template <typename scalar_t>
void forward_impl(const at::Tensor& xp, const at::Tensor& w_hh_t, at::Tensor& hs, at::Tensor& gates, at::Tensor& cs) {
  const int64_t T = xp.size(0), B = xp.size(1), G = xp.size(2), H = G / 4;
  const bool packed = blas::could_pack(xp.scalar_type());
  const auto wb = prepare_b<scalar_t>(w_hh_t.data_ptr<scalar_t>(), H, G, packed);
  const scalar_t* x = xp.data_ptr<scalar_t>();
  scalar_t* h = hs.data_ptr<scalar_t>();
  float* gt = gates.data_ptr<float>();
  float* c = cs.data_ptr<float>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    std::vector<float> z(rows * G), hf(rows * H);
    for (int64_t t = 0; t < T; ++t) {
      to_float(x + (t * B + b0) * G, z.data(), rows * G);
      if (t > 0)
        gemm_acc(rows, G, H, h + ((t - 1) * B + b0) * H, H, wb.data(), z.data(), G, packed);
      float* g = gt + (t * B + b0) * G;
      float* cn = c + (t * B + b0) * H;
      const float* cp = t > 0 ? c + ((t - 1) * B + b0) * H : nullptr;
      for (int64_t r = 0; r < rows; ++r) {
        const float* zr = z.data() + r * G;
        float* gr = g + r * G;
        float* cr = cn + r * H;
        float* hr = hf.data() + r * H;
        const float* cpr = cp ? cp + r * H : nullptr;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float i = sigmoid(zr[j]), f = sigmoid(zr[H + j]), gg = tanh_(zr[2 * H + j]), o = sigmoid(zr[3 * H + j]);
          const float cv = i * gg + (cpr ? f * cpr[j] : 0.0f);
          gr[j] = i; gr[H + j] = f; gr[2 * H + j] = gg; gr[3 * H + j] = o;
          cr[j] = cv;
          hr[j] = o * tanh_(cv);
        }
      }
      from_float(hf.data(), h + (t * B + b0) * H, rows * H);
    }
    if (packed) blas::brgemm_release(packed);
  });
}

template <typename scalar_t>
void backward_impl(const at::Tensor& dhs, const at::Tensor& gates, const at::Tensor& cs, const at::Tensor& w_hh,
                   at::Tensor& dgates) {
  const int64_t T = dhs.size(0), B = dhs.size(1), H = dhs.size(2), G = 4 * H;
  const bool packed = blas::could_pack(dhs.scalar_type());
  const auto wb = prepare_b<scalar_t>(w_hh.data_ptr<scalar_t>(), G, H, packed);
  const scalar_t* dy = dhs.data_ptr<scalar_t>();
  const float* gt = gates.data_ptr<float>();
  const float* c = cs.data_ptr<float>();
  scalar_t* dg = dgates.data_ptr<scalar_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    const int64_t rows = b1 - b0;
    std::vector<float> dh(rows * H), dc(rows * H, 0.0f), dgf(rows * G);
    for (int64_t t = T - 1; t >= 0; --t) {
      to_float(dy + (t * B + b0) * H, dh.data(), rows * H);
      if (t < T - 1)
        gemm_acc(rows, H, G, dg + ((t + 1) * B + b0) * G, G, wb.data(), dh.data(), H, packed);
      const float* g = gt + (t * B + b0) * G;
      const float* cn = c + (t * B + b0) * H;
      const float* cp = t > 0 ? c + ((t - 1) * B + b0) * H : nullptr;
      for (int64_t r = 0; r < rows; ++r) {
        const float* gr = g + r * G;
        const float* cr = cn + r * H;
        const float* cpr = cp ? cp + r * H : nullptr;
        const float* dhr = dh.data() + r * H;
        float* dcr = dc.data() + r * H;
        float* dgr = dgf.data() + r * G;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
          const float i = gr[j], f = gr[H + j], gg = gr[2 * H + j], o = gr[3 * H + j];
          const float tc = tanh_(cr[j]);
          const float d = dcr[j] + dhr[j] * o * (1.0f - tc * tc);
          dgr[j] = d * gg * i * (1.0f - i);
          dgr[H + j] = (cpr ? d * cpr[j] : 0.0f) * f * (1.0f - f);
          dgr[2 * H + j] = d * i * (1.0f - gg * gg);
          dgr[3 * H + j] = dhr[j] * tc * o * (1.0f - o);
          dcr[j] = d * f;
        }
      }
      from_float(dgf.data(), dg + (t * B + b0) * G, rows * G);
    }
    if (packed) blas::brgemm_release(packed);
  });
}

}  // namespace

// xp (T, B, 4H): input projections plus both biases; w_hh_t (H, 4H) in xp's dtype.
// Returns hs (T, B, H) in xp's dtype, gates (T, B, 4H) float32 (activated i, f, g, o), cs (T, B, H) float32.
std::vector<at::Tensor> lstm_forward(const at::Tensor& xp, const at::Tensor& w_hh_t) {
  TORCH_CHECK(xp.dim() == 3 && xp.is_contiguous(), "xp must be a contiguous (T, B, 4H) tensor");
  TORCH_CHECK(w_hh_t.is_contiguous() && w_hh_t.scalar_type() == xp.scalar_type(), "w_hh_t must be contiguous and match xp");
  const int64_t T = xp.size(0), B = xp.size(1), G = xp.size(2), H = G / 4;
  TORCH_CHECK(w_hh_t.size(0) == H && w_hh_t.size(1) == G, "w_hh_t must be (H, 4H)");
  TORCH_CHECK(H % 2 == 0, "the hidden size must be even (VNNI packing pairs rows), got ", H);
  auto hs = at::empty({T, B, H}, xp.options());
  auto gates = at::empty({T, B, G}, xp.options().dtype(at::kFloat));
  auto cs = at::empty({T, B, H}, xp.options().dtype(at::kFloat));
  if (xp.scalar_type() == at::kBFloat16) forward_impl<at::BFloat16>(xp, w_hh_t, hs, gates, cs);
  else if (xp.scalar_type() == at::kFloat) forward_impl<float>(xp, w_hh_t, hs, gates, cs);
  else TORCH_CHECK(false, "lstm_forward: expected float32 or bfloat16, got ", xp.scalar_type());
  return {hs, gates, cs};
}

// dhs (T, B, H) in the compute dtype; gates, cs from lstm_forward; w_hh (4H, H) in dhs's dtype.
// Returns dgates (T, B, 4H) = the gradient of xp; the caller forms the weight gradients from it.
at::Tensor lstm_backward(const at::Tensor& dhs, const at::Tensor& gates, const at::Tensor& cs, const at::Tensor& w_hh) {
  TORCH_CHECK(dhs.is_contiguous() && gates.is_contiguous() && cs.is_contiguous() && w_hh.is_contiguous(),
              "lstm_backward takes contiguous tensors");
  TORCH_CHECK(w_hh.scalar_type() == dhs.scalar_type(), "w_hh must match dhs");
  const int64_t T = dhs.size(0), B = dhs.size(1), H = dhs.size(2), G = 4 * H;
  auto dgates = at::empty({T, B, G}, dhs.options());
  if (dhs.scalar_type() == at::kBFloat16) backward_impl<at::BFloat16>(dhs, gates, cs, w_hh, dgates);
  else if (dhs.scalar_type() == at::kFloat) backward_impl<float>(dhs, gates, cs, w_hh, dgates);
  else TORCH_CHECK(false, "lstm_backward: expected float32 or bfloat16, got ", dhs.scalar_type());
  return dgates;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &lstm_forward, "LSTM recurrence, forward");
  m.def("backward", &lstm_backward, "LSTM recurrence, backward");
}
