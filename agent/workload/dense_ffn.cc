// Dense-FFN layers of a decoder stack, on the MoE layers' SwiGLU arithmetic (ExpertForward).
#include "agent/workload/dense_ffn.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/workload/random.h"
#include "agent/workload/weights.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

uint64_t DenseKey(uint64_t seed, StreamPurpose purpose, int64_t layer) {
  return StreamKey({seed, static_cast<uint64_t>(purpose), static_cast<uint64_t>(layer)});
}

}  // namespace

int64_t DenseFfnLayers::Bytes(const ModelSpec& m, int64_t layers, Dtype dtype) {
  return layers * DenseFfnParamsPerLayer(m) * static_cast<int64_t>(DtypeBytes(dtype));
}

int64_t DenseFfnLayers::WorkBytes(const ModelSpec& m, Dtype dtype, int64_t rows) {
  const int64_t d = m.hidden_size;
  const int64_t act =
      dtype == Dtype::kFp32 ? 0 : rows * d * static_cast<int64_t>(DtypeBytes(dtype));
  return rows * d * 4 + act + ExpertScratch::Bytes(dtype, d, m.dense_ffn_size);
}

void DenseFfnLayers::Fill(ComputeBackend& backend, const ModelSpec& m, Dtype dtype, uint64_t seed,
                          int64_t layer, void* gate_up, void* down) {
  const int64_t d = m.hidden_size, f = m.dense_ffn_size;
  FillWeights(backend, DenseKey(seed, StreamPurpose::kDenseGateUp, layer), 2 * f * d, d, dtype,
              gate_up);
  FillWeights(backend, DenseKey(seed, StreamPurpose::kDenseDown, layer), d * f, f, dtype, down);
}

absl::StatusOr<DenseFfnLayers> DenseFfnLayers::Generate(ComputeBackend& backend, const ModelSpec& m,
                                                        int64_t layers, Dtype dtype,
                                                        uint64_t seed) {
  const int64_t d = m.hidden_size, f = m.dense_ffn_size;
  if (layers > 0 && (d < 1 || f < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", m.name, "': dense layers need hidden_size and dense_ffn_size >= 1, got ", d,
        " and ", f));
  }
  DenseFfnLayers out(m, backend, dtype);
  const size_t eb = static_cast<size_t>(DtypeBytes(dtype));
  for (int64_t l = 0; l < layers; ++l) {
    Layer layer;
    MOECAP_ASSIGN_OR_RETURN(layer.gate_up, backend.Allocate(eb * static_cast<size_t>(2 * f * d)));
    MOECAP_ASSIGN_OR_RETURN(layer.down, backend.Allocate(eb * static_cast<size_t>(d * f)));
    Fill(backend, m, dtype, seed, l, layer.gate_up.data(), layer.down.data());
    out.layers_.push_back(std::move(layer));
  }
  return out;
}

absl::Status DenseFfnLayers::Prepare(int64_t rows) {
  const size_t d = static_cast<size_t>(model_->hidden_size);
  MOECAP_RETURN_IF_ERROR(GrowBuffer(*backend_, normed_, static_cast<size_t>(rows) * d * 4));
  if (dtype_ != Dtype::kFp32) {
    MOECAP_RETURN_IF_ERROR(GrowBuffer(
        *backend_, act_, static_cast<size_t>(rows) * d * static_cast<size_t>(DtypeBytes(dtype_))));
  }
  if (scratch_.chunk_rows == 0) {
    MOECAP_ASSIGN_OR_RETURN(scratch_, ExpertScratch::Make(*backend_, dtype_, model_->hidden_size,
                                                          model_->dense_ffn_size));
  }
  return absl::OkStatus();
}

absl::Status DenseFfnLayers::Forward(int64_t layer, const float* x, int64_t rows, float* out) {
  if (layer < 0 || layer >= layers()) {
    return absl::OutOfRangeError(
        absl::StrCat("dense layer ", layer, " of a stack of ", layers(), " dense layers"));
  }
  const int64_t d = model_->hidden_size;
  if (normed_.bytes() < static_cast<size_t>(rows * d) * 4) {
    return absl::FailedPreconditionError(
        absl::StrCat("DenseFfnLayers::Forward over ", rows, " rows before Prepare for them"));
  }
  float* normed = normed_.as<float>();
  RmsNormRows(x, rows, d, normed);
  const char* act = reinterpret_cast<const char*>(normed);
  if (dtype_ != Dtype::kFp32) {
    backend_->FromFloat(normed, rows * d, dtype_, act_.data());
    act = act_.as<char>();
  }
  const size_t row_bytes = static_cast<size_t>(d) * static_cast<size_t>(DtypeBytes(dtype_));
  const RowSource source = [&](int64_t first, int64_t, void*) -> const void* {
    return act + static_cast<size_t>(first) * row_bytes;
  };
  const RowSink sink = [&](int64_t first, int64_t count, const float* y) {
    const int64_t begin = first * d, end = (first + count) * d;
    for (int64_t i = begin; i < end; ++i) out[i] = x[i] + y[i - begin];
  };
  const Layer& w = layers_[static_cast<size_t>(layer)];
  return ExpertForward(*backend_, dtype_, d, model_->dense_ffn_size, w.gate_up.data(),
                       w.down.data(), rows, source, sink, scratch_);
}

}  // namespace moecap
