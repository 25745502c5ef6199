// CudaBackend: cuBLAS GEMMs and the element-wise kernels on one stream of one GPU.
#include "agent/compute/cuda/cuda_backend.h"

#include <cuda_runtime.h>
#include <library_types.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "common/status_macros.h"

namespace moecap::cuda {
namespace {

// cuBLAS's recommended workspace on Hopper; set explicitly so cuBLAS never allocates on its own
// (which a CUDA graph capture would not allow).
constexpr size_t kCublasWorkspaceBytes = 32u << 20;

absl::StatusOr<cudaDataType_t> CudaType(Dtype dtype) {
  switch (dtype) {
    case Dtype::kFp32:
      return CUDA_R_32F;
    case Dtype::kBf16:
      return CUDA_R_16BF;
    default:
      return absl::UnimplementedError(absl::StrCat(
          "dtype ", DtypeName(dtype), " is unsupported by the CUDA backend (fp32, bf16)"));
  }
}

size_t ElementBytes(Dtype dtype) { return dtype == Dtype::kFp32 ? 4 : 2; }

std::string VersionString(int version) {  // CUDA's 1000·major + 10·minor
  return absl::StrCat(version / 1000, ".", (version % 1000) / 10);
}

bool FitsInt(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

absl::Status CublasCheck(cublasStatus_t status, absl::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat(what, " failed: ", cublasGetStatusName(status), " (",
                                           cublasGetStatusString(status), ")");
  switch (status) {
    case CUBLAS_STATUS_ALLOC_FAILED:
      return absl::ResourceExhaustedError(message);
    case CUBLAS_STATUS_NOT_INITIALIZED:
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return absl::FailedPreconditionError(message);
    case CUBLAS_STATUS_INVALID_VALUE:
      return absl::InvalidArgumentError(message);
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return absl::UnimplementedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(int device) {
  if (absl::Status s = CudaDevicePresent(); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the CUDA backend on device ", device, ": ", s.message()));
  }
  int count = 0;
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaGetDeviceCount(&count), "cudaGetDeviceCount"));
  if (device < 0 || device >= count) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create the CUDA backend on device ",
                                                      device, ": the runtime sees ", count,
                                                      " device(s), 0..", count - 1));
  }
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaSetDevice(device), "cudaSetDevice"));
  cudaDeviceProp prop{};
  MOECAP_RETURN_IF_ERROR(
      CudaCheck(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties"));
  int runtime_version = 0;
  int driver_version = 0;
  cudaRuntimeGetVersion(&runtime_version);
  cudaDriverGetVersion(&driver_version);

  cudaStream_t stream = nullptr;
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                                   "cudaStreamCreateWithFlags"));
  cublasHandle_t handle = nullptr;
  void* workspace = nullptr;
  // Releases what was made so far when a later step fails.
  const auto fail = [&](absl::Status status) -> absl::Status {
    if (handle != nullptr) cublasDestroy(handle);
    if (workspace != nullptr) cudaFree(workspace);
    cudaStreamDestroy(stream);
    return status;
  };
  if (absl::Status s = CublasCheck(cublasCreate(&handle), "cublasCreate"); !s.ok()) {
    handle = nullptr;
    return fail(s);
  }
  if (absl::Status s = CublasCheck(cublasSetStream(handle, stream), "cublasSetStream"); !s.ok()) {
    return fail(s);
  }
  if (absl::Status s =
          CudaCheck(cudaMalloc(&workspace, kCublasWorkspaceBytes), "cudaMalloc (cuBLAS workspace)");
      !s.ok()) {
    workspace = nullptr;
    return fail(s);
  }
  if (absl::Status s = CublasCheck(cublasSetWorkspace(handle, workspace, kCublasWorkspaceBytes),
                                   "cublasSetWorkspace");
      !s.ok()) {
    return fail(s);
  }
  int cublas_version = 0;
  cublasGetVersion(handle, &cublas_version);  // major·10000 + minor·100 + patch
  const std::string config =
      absl::StrFormat("%s, sm_%d%d, %d SMs, %.1f GiB; CUDA runtime %s, driver %s; cuBLAS %d.%d.%d",
                      prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                      static_cast<double>(prop.totalGlobalMem) / (1ULL << 30),
                      VersionString(runtime_version), VersionString(driver_version),
                      cublas_version / 10000, (cublas_version / 100) % 100, cublas_version % 100);
  return std::unique_ptr<CudaBackend>(new CudaBackend(device, stream, handle, workspace, config));
}

CudaBackend::CudaBackend(int device, cudaStream_t stream, cublasHandle_t cublas, void* workspace,
                         std::string library_config)
    : device_(device),
      stream_(stream),
      cublas_(cublas),
      workspace_(workspace),
      library_config_(std::move(library_config)) {}

CudaBackend::~CudaBackend() {
  // Errors cannot be returned from here; the stream is drained so nothing still uses the handle.
  cudaSetDevice(device_);
  cudaStreamSynchronize(stream_);
  cublasDestroy(cublas_);
  cudaFree(workspace_);
  cudaStreamDestroy(stream_);
}

absl::Status CudaBackend::MakeCurrent() const {
  return CudaCheck(cudaSetDevice(device_), absl::StrCat("cudaSetDevice(", device_, ")"));
}

absl::Status CudaBackend::CheckDtype(Dtype dtype) const { return CudaType(dtype).status(); }

absl::StatusOr<Buffer> CudaBackend::Allocate(size_t bytes) {
  MOECAP_RETURN_IF_ERROR(MakeCurrent());
  constexpr size_t kAlign = 256;
  const size_t rounded = std::max<size_t>(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  void* data = nullptr;
  if (absl::Status s =
          CudaCheck(cudaMalloc(&data, rounded),
                    absl::StrCat("cudaMalloc of ", rounded, " bytes on device ", device_));
      !s.ok()) {
    return s;
  }
  // Waited for: a buffer handed to another stream (NCCL's, say) must already read as zeros.
  absl::Status s = CudaCheck(cudaMemsetAsync(data, 0, rounded, stream_), "cudaMemsetAsync");
  if (s.ok()) s = CudaCheck(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  if (!s.ok()) {
    cudaFree(data);
    return s;
  }
  const int device = device_;
  return Buffer(data, rounded, [device](void* p) {
    // cudaFree needs no particular current device under unified addressing, but the device is
    // made current anyway (and the caller's restored) so the free lands in the right context.
    int previous = -1;
    cudaGetDevice(&previous);
    cudaSetDevice(device);
    cudaFree(p);
    if (previous >= 0) cudaSetDevice(previous);
  });
}

absl::Status CudaBackend::MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a,
                                 int64_t lda, const void* w, int64_t ldw, float* c, int64_t ldc,
                                 bool accumulate) {
  return MatMulTo(dtype, Dtype::kFp32, m, n, k, a, lda, w, ldw, c, ldc, accumulate);
}

absl::Status CudaBackend::MatMulTo(Dtype dtype, Dtype out_dtype, int64_t m, int64_t n, int64_t k,
                                   const void* a, int64_t lda, const void* w, int64_t ldw, void* c,
                                   int64_t ldc, bool accumulate) {
  absl::StatusOr<cudaDataType_t> ab_type = CudaType(dtype);
  if (!ab_type.ok()) return ab_type.status();
  absl::StatusOr<cudaDataType_t> c_type = CudaType(out_dtype);
  if (!c_type.ok()) return c_type.status();
  if (out_dtype == Dtype::kBf16 && dtype != Dtype::kBf16) {
    return absl::UnimplementedError(
        absl::StrCat("MatMulTo: a bf16 result needs bf16 operands (got ", DtypeName(dtype), ")"));
  }
  for (const auto& [value, field] : {std::pair<int64_t, const char*>{m, "m"}, {n, "n"}, {k, "k"}}) {
    if (!FitsInt(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("MatMul: ", field, " is ", value, " (must be in 0..2^31-1)"));
    }
  }
  if (m == 0 || n == 0) return absl::OkStatus();
  if (!FitsInt(ldc) || ldc < n) {
    return absl::InvalidArgumentError(absl::StrCat("MatMul: ldc is ", ldc, " (n is ", n, ")"));
  }
  MOECAP_RETURN_IF_ERROR(MakeCurrent());
  const size_t c_bytes = ElementBytes(out_dtype);
  if (k == 0) {
    if (accumulate) return absl::OkStatus();
    return CudaCheck(
        cudaMemset2DAsync(c, static_cast<size_t>(ldc) * c_bytes, 0,
                          static_cast<size_t>(n) * c_bytes, static_cast<size_t>(m), stream_),
        "MatMul: cudaMemset2DAsync (k = 0)");
  }
  if (!FitsInt(lda) || lda < k || !FitsInt(ldw) || ldw < k) {
    return absl::InvalidArgumentError(
        absl::StrCat("MatMul: lda ", lda, " and ldw ", ldw, " must be at least k (", k, ")"));
  }
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  // cuBLAS is column-major: row-major C (m×n) is column-major Cᵀ (n×m), and Cᵀ = W·Aᵀ where the
  // row-major W (n×k) read column-major is Wᵀ (k×n), hence op T on it, and row-major A (m×k) read
  // column-major is Aᵀ (k×m) already.
  return CublasCheck(
      cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                   static_cast<int>(k), &alpha, w, *ab_type, static_cast<int>(ldw), a, *ab_type,
                   static_cast<int>(lda), &beta, c, *c_type, static_cast<int>(ldc),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      absl::StrCat("cublasGemmEx (", DtypeName(dtype), " -> ", DtypeName(out_dtype), ", m=", m,
                   " n=", n, " k=", k, ")"));
}

void CudaBackend::Keep(absl::Status status) {
  if (!status.ok() && kept_error_.ok()) kept_error_ = std::move(status);
}

void CudaBackend::SwiGlu(int64_t rows, int64_t f, const float* gate_up, Dtype out_dtype,
                         void* out) {
  Keep(MakeCurrent());
  Keep(cuda::SwiGlu(gate_up, rows, f, out_dtype, out, stream_));
}

void CudaBackend::FromFloat(const float* in, int64_t count, Dtype dtype, void* out) {
  Keep(MakeCurrent());
  Keep(cuda::FromFloat(in, count, dtype, out, stream_));
}

void CudaBackend::ToFloat(const void* in, int64_t count, Dtype dtype, float* out) {
  Keep(MakeCurrent());
  Keep(cuda::ToFloat(in, count, dtype, out, stream_));
}

absl::Status CudaBackend::Synchronize() {
  absl::Status status = std::exchange(kept_error_, absl::OkStatus());
  absl::Status sync = MakeCurrent();
  if (sync.ok()) {
    sync = CudaCheck(cudaStreamSynchronize(stream_),
                     absl::StrCat("cudaStreamSynchronize on device ", device_));
  }
  return status.ok() ? sync : status;
}

absl::Status CudaBackend::Upload(void* device_dst, const void* host_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(MakeCurrent());
  if (absl::Status s =
          CudaCheck(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, stream_),
                    absl::StrCat("Upload: cudaMemcpyAsync of ", bytes, " bytes"));
      !s.ok()) {
    return s;
  }
  return CudaCheck(cudaStreamSynchronize(stream_), "Upload: cudaStreamSynchronize");
}

absl::Status CudaBackend::Download(void* host_dst, const void* device_src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  MOECAP_RETURN_IF_ERROR(MakeCurrent());
  if (absl::Status s =
          CudaCheck(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, stream_),
                    absl::StrCat("Download: cudaMemcpyAsync of ", bytes, " bytes"));
      !s.ok()) {
    return s;
  }
  return CudaCheck(cudaStreamSynchronize(stream_), "Download: cudaStreamSynchronize");
}

}  // namespace moecap::cuda
