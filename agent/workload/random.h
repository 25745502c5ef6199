// Counter-based random numbers: value i of stream `key` is a pure function of (key, i), so any
// rank (and the single-rank reference) regenerates exactly the same weights, inputs and routing
// choices without sharing state, in any order.
#ifndef MOECAP_AGENT_WORKLOAD_RANDOM_H_
#define MOECAP_AGENT_WORKLOAD_RANDOM_H_

#include <cstdint>
#include <initializer_list>

// Mix64 and the uniforms also run in CUDA kernels (the GPU backend regenerates the same weights
// on the device), so under nvcc they are host-and-device functions.
#if defined(__CUDACC__)
#define MOECAP_HOST_DEVICE __host__ __device__
#else
#define MOECAP_HOST_DEVICE
#endif

namespace moecap {

// SplitMix64's finaliser: a bijective mix with good avalanche.
MOECAP_HOST_DEVICE inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// One stream key from several parts (seed, purpose, layer, expert, ...).
inline uint64_t StreamKey(std::initializer_list<uint64_t> parts) {
  uint64_t key = 0x6d6f65636170ULL;  // "moecap"
  for (uint64_t part : parts) key = Mix64(key ^ Mix64(part));
  return key;
}

// Uniform in [0, 1) with 24 random bits (exact in float).
MOECAP_HOST_DEVICE inline float Uniform01(uint64_t key, uint64_t index) {
  return static_cast<float>(Mix64(key + index * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1.0p-24f;
}

// Uniform in (0, 1): never 0, so its logarithm is finite.
MOECAP_HOST_DEVICE inline double UniformOpen01(uint64_t key, uint64_t index) {
  return (static_cast<double>(Mix64(key + index * 0x9e3779b97f4a7c15ULL) >> 11) + 0.5) * 0x1.0p-53;
}

// What a stream is for; part of every key so streams never collide.
enum class StreamPurpose : uint64_t {
  kRouterWeights = 1,
  kExpertGateUp = 2,
  kExpertDown = 3,
  kSharedGateUp = 4,
  kSharedDown = 5,
  kInput = 6,
  kRoutingChoice = 7,
  kZipfPopularity = 8,
  kAttentionQkv = 9,
  kAttentionOut = 10,
  kKvCache = 11,
  kLmHead = 12,
  kAttentionQ = 13,  // MLA's query projection (the GQA one is inside kAttentionQkv)
  kAttentionQa = 14,
  kAttentionKvA = 15,
  kAttentionKvB = 16,
  kDenseGateUp = 17,  // the dense-FFN layers of a decoder stack
  kDenseDown = 18,
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_RANDOM_H_
