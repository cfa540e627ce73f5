#include <doctest/doctest.h>

#include <string>

#include "gateway/health_endpoint.h"

using castgate::HealthRoute;
using castgate::route_health_request;

TEST_CASE("health requests: readiness, liveness and nothing else") {
  CHECK(route_health_request("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n") == HealthRoute::kReady);
  CHECK(route_health_request("GET /healthz HTTP/1.0\r\n\r\n") == HealthRoute::kReady);
  CHECK(route_health_request("GET /livez HTTP/1.1\r\n\r\n") == HealthRoute::kLive);
  CHECK(route_health_request("GET /livez?verbose=1 HTTP/1.1\r\n\r\n") == HealthRoute::kLive);
  CHECK(route_health_request("GET /livez\n\n") == HealthRoute::kLive);  // bare line feeds
  CHECK(route_health_request("GET /metrics HTTP/1.1\r\n\r\n") == HealthRoute::kMetrics);
  CHECK(route_health_request("GET /metrics/ HTTP/1.1\r\n\r\n") == HealthRoute::kNotFound);
  CHECK(route_health_request("GET / HTTP/1.1\r\n\r\n") == HealthRoute::kNotFound);
  CHECK(route_health_request("GET /livez/../readyz HTTP/1.1\r\n\r\n") == HealthRoute::kNotFound);
  CHECK(route_health_request("GET /READYZ HTTP/1.1\r\n\r\n") == HealthRoute::kNotFound);
  CHECK(route_health_request("GET  /readyz HTTP/1.1\r\n\r\n") == HealthRoute::kNotFound);
  CHECK(route_health_request("POST /readyz HTTP/1.1\r\n\r\n") == HealthRoute::kBadMethod);
  CHECK(route_health_request("get /readyz HTTP/1.1\r\n\r\n") == HealthRoute::kBadMethod);
  CHECK(route_health_request("") == HealthRoute::kBadMethod);
  CHECK(route_health_request("GET") == HealthRoute::kBadMethod);
  CHECK(route_health_request(std::string(4096, 'G')) == HealthRoute::kBadMethod);
  CHECK(route_health_request("GET " + std::string(4092, '/')) == HealthRoute::kNotFound);
  CHECK(route_health_request(std::string("GET /readyz\0 HTTP/1.1", 21)) == HealthRoute::kNotFound);
}
