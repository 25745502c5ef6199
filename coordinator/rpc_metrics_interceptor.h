// A gRPC server interceptor that counts every call and its latency by service, method, type and
// status code (go-grpc-prometheus labels), so no reactor carries metrics code.
#ifndef MOECAP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_
#define MOECAP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_

#include "coordinator/coordinator_metrics.h"
#include "grpcpp/support/server_interceptor.h"

namespace moecap::coordinator {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(CoordinatorMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  CoordinatorMetrics& metrics_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_RPC_METRICS_INTERCEPTOR_H_
