"""The xDS resources one sidecar gets: its listeners, routes, clusters, endpoints and secrets.

Per instance of service S, the sidecar has
- an *inbound* listener on the instance's mesh port: mTLS only (client certificate required,
  signed by the mesh root), the RBAC filter compiled from the policy for S, then S's
  application over its private address (a Unix socket);
- an *outbound* listener per callee C on a loopback port the application is given as C's
  URL: plaintext from the application, then mTLS to an instance of C whose certificate says
  ``spiffe://souk.local/service/C``, balanced, health-checked, with retries and breakers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    grpc_service_pb2,
    health_check_pb2,
    protocol_pb2,
    substitution_format_string_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from google.protobuf.message import Message

from mesh.authority import service_id
from mesh.policy import HEALTH_ROUTES, CalleePolicy
from mesh.registry import Sidecar
from mesh.traffic import IDEMPOTENT_RETRIES, SAFE_RETRIES, Traffic, TrafficSettings

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"  # noqa: S105

SVID_SECRET = "svid"  # noqa: S105 - a name, not a secret
BUNDLE_SECRET = "trust-bundle"  # noqa: S105 - a name, not a secret
LOCAL_APP = "local-app"
INBOUND = "inbound"
CONTROL_PLANE_CLUSTER = "souk-control-plane"


def outbound(callee: str) -> str:
    return f"outbound:{callee}"


@dataclass(frozen=True)
class MeshView:
    """Everything a sidecar's resources are built from."""

    sidecars: tuple[Sidecar, ...]
    traffic: TrafficSettings
    trust_domain: str

    def instances_of(self, service: str) -> list[Sidecar]:
        return [s for s in self.sidecars if s.service == service]


def resources_for(
    sidecar: Sidecar, view: MeshView, policy: CalleePolicy
) -> dict[str, dict[str, Message]]:
    """Every resource of every type for ``sidecar``, by type URL and name."""
    listeners: dict[str, Message] = {INBOUND: _inbound_listener(sidecar, policy, view)}
    routes: dict[str, Message] = {INBOUND: _inbound_routes()}
    clusters: dict[str, Message] = {LOCAL_APP: _local_app_cluster(sidecar)}
    endpoints: dict[str, Message] = {}
    for callee, port in sorted(sidecar.outbound.items()):
        traffic = view.traffic.for_upstream(callee)
        listeners[outbound(callee)] = _outbound_listener(callee, port)
        routes[outbound(callee)] = _outbound_routes(callee, traffic)
        grpc = any(instance.grpc for instance in view.instances_of(callee))
        clusters[callee] = _upstream_cluster(callee, traffic, view.trust_domain, grpc=grpc)
        endpoints[callee] = _load_assignment(callee, view.instances_of(callee))
    return {LISTENER: listeners, ROUTE: routes, CLUSTER: clusters, ENDPOINT: endpoints}


def _seconds(value: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(value * 1_000_000_000))
    return duration


def _packed(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    """Certificates come over SDS, a stream of their own to the control plane."""
    return secret_pb2.SdsSecretConfig(
        name=name,
        sds_config=config_source_pb2.ConfigSource(
            api_config_source=config_source_pb2.ApiConfigSource(
                api_type=config_source_pb2.ApiConfigSource.GRPC,
                transport_api_version=config_source_pb2.V3,
                grpc_services=[
                    grpc_service_pb2.GrpcService(
                        envoy_grpc=grpc_service_pb2.GrpcService.EnvoyGrpc(
                            cluster_name=CONTROL_PLANE_CLUSTER
                        )
                    )
                ],
                set_node_on_first_message_only=True,
            ),
            resource_api_version=config_source_pb2.V3,
        ),
    )


def _socket(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=host, port_value=port)
    )


def _app_address(app: str) -> address_pb2.Address:
    if app.startswith("unix:"):
        return address_pb2.Address(pipe=address_pb2.Pipe(path=app.removeprefix("unix:")))
    host, _, port = app.rpartition(":")
    return _socket(host or "127.0.0.1", int(port))


def _same_protocol_as_downstream() -> dict[str, any_pb2.Any]:
    """HTTP/1.1 stays HTTP/1.1 and h2 (gRPC) stays h2 on every hop, so the application sees
    the protocol its client spoke."""
    options = http_protocol_options_pb2.HttpProtocolOptions(
        use_downstream_protocol_config=http_protocol_options_pb2.HttpProtocolOptions.UseDownstreamHttpConfig(
            http_protocol_options=protocol_pb2.Http1ProtocolOptions(),
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions(),
        )
    )
    return {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _packed(options)}


def _problem_replies() -> hcm_pb2.LocalReplyConfig:
    """Envoy's own answers (policy refusal, breaker overflow, no healthy upstream) as RFC 9457
    problems, like every Souk process answers. gRPC callers get the matching grpc-status."""
    body = struct_pb2.Struct()
    body.update(
        {
            "type": "about:blank",
            "title": "%LOCAL_REPLY_BODY%",
            "status": "%RESPONSE_CODE%",
            "detail": "%RESPONSE_CODE_DETAILS%",
        }
    )
    return hcm_pb2.LocalReplyConfig(
        body_format=substitution_format_string_pb2.SubstitutionFormatString(
            json_format=body, content_type="application/problem+json"
        )
    )


def _http_manager(
    stat_prefix: str,
    route_name: str,
    filters: Iterable[hcm_pb2.HttpFilter],
    *,
    inbound: bool = False,
) -> listener_components_pb2.Filter:
    manager = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=route_name),
        http_filters=[
            *filters,
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_packed(router_pb2.Router())
            ),
        ],
        local_reply_config=_problem_replies(),
        # The application's X-Forwarded-For and request ids pass through untouched.
        use_remote_address=wrappers_pb2.BoolValue(value=False),
        http2_protocol_options=protocol_pb2.Http2ProtocolOptions(),
    )
    if inbound:
        # The application learns which service calls (X-Forwarded-Client-Cert: URI=...), set
        # by its own sidecar from the verified certificate; whatever the caller sent is dropped.
        manager.forward_client_cert_details = hcm_pb2.HttpConnectionManager.SANITIZE_SET
        manager.set_current_client_cert_details.uri = True
    return listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager", typed_config=_packed(manager)
    )


def _common_tls(peer: str | None) -> tls_pb2.CommonTlsContext:
    validation = common_pb2.CertificateValidationContext()
    if peer is not None:
        validation.match_typed_subject_alt_names.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.URI,
                matcher=string_pb2.StringMatcher(exact=peer),
            )
        )
    return tls_pb2.CommonTlsContext(
        tls_params=common_pb2.TlsParameters(
            tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_3,
            tls_maximum_protocol_version=common_pb2.TlsParameters.TLSv1_3,
        ),
        tls_certificate_sds_secret_configs=[_sds(SVID_SECRET)],
        combined_validation_context=tls_pb2.CommonTlsContext.CombinedCertificateValidationContext(
            default_validation_context=validation,
            validation_context_sds_secret_config=_sds(BUNDLE_SECRET),
        ),
        # No ALPN: the caller's sidecar speaks what its application spoke (HTTP/1.1 or h2)
        # and the callee's HTTP codec recognises either from the first bytes.
    )


def _rbac(policy: CalleePolicy, trust_domain: str) -> rbac_pb2.RBAC:
    def prefix(route: str) -> rbac_config_pb2.Permission:
        return rbac_config_pb2.Permission(
            url_path=path_pb2.PathMatcher(path=string_pb2.StringMatcher(prefix=route))
        )

    def exact(route: str) -> rbac_config_pb2.Permission:
        return rbac_config_pb2.Permission(
            url_path=path_pb2.PathMatcher(path=string_pb2.StringMatcher(exact=route))
        )

    def any_of(permissions: list[rbac_config_pb2.Permission]) -> rbac_config_pb2.Permission:
        return rbac_config_pb2.Permission(
            or_rules=rbac_config_pb2.Permission.Set(rules=permissions)
        )

    def caller(service: str) -> rbac_config_pb2.Principal:
        return rbac_config_pb2.Principal(
            authenticated=rbac_config_pb2.Principal.Authenticated(
                principal_name=string_pb2.StringMatcher(exact=service_id(service, trust_domain))
            )
        )

    policies: dict[str, rbac_config_pb2.Policy] = {
        "health-checks": rbac_config_pb2.Policy(
            permissions=[any_of([exact(route) for route in HEALTH_ROUTES])],
            principals=[
                rbac_config_pb2.Principal(
                    authenticated=rbac_config_pb2.Principal.Authenticated(
                        # Services' identities only: a host credential (several hosts) is
                        # for the control plane, not for calling sidecars.
                        principal_name=string_pb2.StringMatcher(
                            prefix=f"spiffe://{trust_domain}/service/"
                        )
                    )
                )
            ],
        )
    }
    for index, rule in enumerate(policy.rules):
        permission = any_of([prefix(route) for route in rule.routes])
        shut = [closed for closed in policy.closed if not rule.opens(closed)]
        if shut:
            permission = rbac_config_pb2.Permission(
                and_rules=rbac_config_pb2.Permission.Set(
                    rules=[
                        permission,
                        rbac_config_pb2.Permission(not_rule=any_of([prefix(c) for c in shut])),
                    ]
                )
            )
        policies[f"rule-{index}"] = rbac_config_pb2.Policy(
            permissions=[permission], principals=[caller(c) for c in rule.callers]
        )
    return rbac_pb2.RBAC(
        rules=rbac_config_pb2.RBAC(action=rbac_config_pb2.RBAC.ALLOW, policies=policies)
    )


def _inbound_listener(sidecar: Sidecar, policy: CalleePolicy, view: MeshView) -> Message:
    common = _common_tls(peer=None)
    # Sidecars offer no ALPN; a direct gRPC client (an operator's tool) needs h2 agreed.
    common.alpn_protocols.extend(["h2", "http/1.1"])
    tls = tls_pb2.DownstreamTlsContext(
        common_tls_context=common,
        require_client_certificate=wrappers_pb2.BoolValue(value=True),
    )
    rbac = hcm_pb2.HttpFilter(
        name="envoy.filters.http.rbac", typed_config=_packed(_rbac(policy, view.trust_domain))
    )
    return listener_pb2.Listener(
        name=INBOUND,
        address=_socket(sidecar.inbound_host, sidecar.inbound_port),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[_http_manager("inbound", INBOUND, [rbac], inbound=True)],
                transport_socket=base_pb2.TransportSocket(
                    name="envoy.transport_sockets.tls", typed_config=_packed(tls)
                ),
            )
        ],
    )


def _inbound_routes() -> Message:
    return route_pb2.RouteConfiguration(
        name=INBOUND,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=LOCAL_APP,
                domains=["*"],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix="/"),
                        route=route_components_pb2.RouteAction(
                            cluster=LOCAL_APP,
                            # The caller's sidecar keeps the deadline; this hop adds none.
                            timeout=_seconds(0),
                        ),
                    )
                ],
            )
        ],
    )


def _local_app_cluster(sidecar: Sidecar) -> Message:
    return cluster_pb2.Cluster(
        name=LOCAL_APP,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=_seconds(1),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=LOCAL_APP,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=_app_address(sidecar.app_address)
                            )
                        )
                    ]
                )
            ],
        ),
        typed_extension_protocol_options=_same_protocol_as_downstream(),
        # The instance's own breakers live in the callers' sidecars; here nothing is capped
        # below what the application itself copes with.
        circuit_breakers=circuit_breaker_pb2.CircuitBreakers(
            thresholds=[
                circuit_breaker_pb2.CircuitBreakers.Thresholds(
                    max_connections=wrappers_pb2.UInt32Value(value=100_000),
                    max_pending_requests=wrappers_pb2.UInt32Value(value=100_000),
                    max_requests=wrappers_pb2.UInt32Value(value=100_000),
                )
            ]
        ),
    )


def _outbound_listener(callee: str, port: int) -> Message:
    return listener_pb2.Listener(
        name=outbound(callee),
        address=_socket("127.0.0.1", port),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[_http_manager(f"outbound_{callee}", outbound(callee), [])]
            )
        ],
    )


def _outbound_routes(callee: str, traffic: Traffic) -> Message:
    def route(retry_on: str, methods: list[str] | None) -> route_components_pb2.Route:
        match = route_components_pb2.RouteMatch(prefix="/")
        if methods:
            match.headers.append(
                route_components_pb2.HeaderMatcher(
                    name=":method",
                    string_match=string_pb2.StringMatcher(
                        safe_regex=regex_pb2.RegexMatcher(regex="|".join(methods))
                    ),
                )
            )
        return route_components_pb2.Route(
            match=match,
            route=route_components_pb2.RouteAction(
                cluster=callee,
                timeout=_seconds(traffic.timeout),
                # A gRPC call's own deadline (grpc-timeout) is the route's timeout.
                max_stream_duration=route_components_pb2.RouteAction.MaxStreamDuration(
                    grpc_timeout_header_max=_seconds(0)
                ),
                retry_policy=route_components_pb2.RetryPolicy(
                    retry_on=retry_on,
                    num_retries=wrappers_pb2.UInt32Value(value=traffic.num_retries),
                    per_try_timeout=_seconds(traffic.per_try_timeout)
                    if traffic.per_try_timeout
                    else None,
                    retry_host_predicate=[
                        route_components_pb2.RetryPolicy.RetryHostPredicate(
                            name="envoy.retry_host_predicates.previous_hosts",
                            typed_config=_packed(_previous_hosts()),
                        )
                    ],
                    host_selection_retry_max_attempts=3,
                ),
            ),
        )

    return route_pb2.RouteConfiguration(
        name=outbound(callee),
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=callee,
                domains=["*"],
                routes=[route(IDEMPOTENT_RETRIES, ["GET", "HEAD"]), route(SAFE_RETRIES, None)],
            )
        ],
    )


def _previous_hosts() -> Message:
    from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: PLC0415

    return previous_hosts_pb2.PreviousHostsPredicate()


_LB = {
    "round_robin": cluster_pb2.Cluster.ROUND_ROBIN,
    "least_request": cluster_pb2.Cluster.LEAST_REQUEST,
    "ring_hash": cluster_pb2.Cluster.RING_HASH,
}


def _health_check(traffic: Traffic, *, grpc: bool) -> health_check_pb2.HealthCheck:
    check = health_check_pb2.HealthCheck(
        timeout=_seconds(traffic.health_check_timeout),
        interval=_seconds(traffic.health_check_interval),
        unhealthy_threshold=wrappers_pb2.UInt32Value(value=traffic.unhealthy_threshold),
        healthy_threshold=wrappers_pb2.UInt32Value(value=traffic.healthy_threshold),
        no_traffic_interval=_seconds(traffic.health_check_interval),
    )
    if grpc:
        # A gRPC server answers the standard health service, not GET /readyz.
        check.grpc_health_check.SetInParent()
    else:
        check.http_health_check.path = traffic.health_check_path
    return check


def _upstream_cluster(callee: str, traffic: Traffic, trust_domain: str, *, grpc: bool) -> Message:
    tls = tls_pb2.UpstreamTlsContext(
        common_tls_context=_common_tls(peer=service_id(callee, trust_domain))
    )
    return cluster_pb2.Cluster(
        name=callee,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()),
        connect_timeout=_seconds(traffic.connect_timeout),
        lb_policy=_LB[traffic.lb_policy],
        transport_socket=base_pb2.TransportSocket(
            name="envoy.transport_sockets.tls", typed_config=_packed(tls)
        ),
        typed_extension_protocol_options=_same_protocol_as_downstream(),
        health_checks=[_health_check(traffic, grpc=grpc)],
        common_lb_config=cluster_pb2.Cluster.CommonLbConfig(
            healthy_panic_threshold=percent_pb2.Percent(value=0)
        ),
        outlier_detection=outlier_detection_pb2.OutlierDetection(
            consecutive_5xx=wrappers_pb2.UInt32Value(value=traffic.consecutive_5xx),
            consecutive_gateway_failure=wrappers_pb2.UInt32Value(
                value=traffic.consecutive_gateway_failure
            ),
            enforcing_consecutive_gateway_failure=wrappers_pb2.UInt32Value(value=100),
            interval=_seconds(traffic.outlier_interval),
            base_ejection_time=_seconds(traffic.base_ejection_time),
            max_ejection_time=_seconds(traffic.base_ejection_time * 4),
            max_ejection_percent=wrappers_pb2.UInt32Value(value=traffic.max_ejection_percent),
        ),
        circuit_breakers=circuit_breaker_pb2.CircuitBreakers(
            thresholds=[
                circuit_breaker_pb2.CircuitBreakers.Thresholds(
                    max_connections=wrappers_pb2.UInt32Value(value=traffic.max_connections),
                    max_pending_requests=wrappers_pb2.UInt32Value(
                        value=traffic.max_pending_requests
                    ),
                    max_requests=wrappers_pb2.UInt32Value(value=traffic.max_requests),
                    max_retries=wrappers_pb2.UInt32Value(value=traffic.max_retries),
                    retry_budget=circuit_breaker_pb2.CircuitBreakers.Thresholds.RetryBudget(
                        budget_percent=percent_pb2.Percent(value=traffic.retry_budget_percent),
                        min_retry_concurrency=wrappers_pb2.UInt32Value(
                            value=traffic.min_retry_concurrency
                        ),
                    ),
                    track_remaining=True,
                )
            ]
        ),
    )


def _load_assignment(callee: str, instances: list[Sidecar]) -> Message:
    return endpoint_pb2.ClusterLoadAssignment(
        cluster_name=callee,
        endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(
                lb_endpoints=[
                    endpoint_components_pb2.LbEndpoint(
                        endpoint=endpoint_components_pb2.Endpoint(
                            address=_socket(instance.inbound_host, instance.inbound_port),
                            hostname=instance.node_id,
                        ),
                        metadata=base_pb2.Metadata(),
                    )
                    for instance in instances
                ]
            )
        ],
    )


def svid_secret(certificate_pem: bytes, private_key_pem: bytes) -> Message:
    return secret_pb2.Secret(
        name=SVID_SECRET,
        tls_certificate=common_pb2.TlsCertificate(
            certificate_chain=base_pb2.DataSource(inline_bytes=certificate_pem),
            private_key=base_pb2.DataSource(inline_bytes=private_key_pem),
        ),
    )


def bundle_secret(bundle_pem: bytes) -> Message:
    return secret_pb2.Secret(
        name=BUNDLE_SECRET,
        validation_context=common_pb2.CertificateValidationContext(
            trusted_ca=base_pb2.DataSource(inline_bytes=bundle_pem)
        ),
    )
