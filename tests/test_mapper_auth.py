"""Agent authentication by TokenReview against the Kubernetes API test server, with audiences
checked as kube-apiserver checks them: the agents' projected token audience is required, and only
the agent's ServiceAccount is accepted. Also the bed's TokenReview audience semantics."""
from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from kubernetes import client as k8s

from beds.kubeserver.tokens import API_AUDIENCE
from clearance.cli import build_parser
from clearance.mapper.auth import DEFAULT_AGENT_AUDIENCE, DEFAULT_AGENT_SA, Refusal, TokenReviewer
from clearance.mapper.main import build
from clearance.mapper.service import serve
from clearance.v1 import report_pb2, report_pb2_grpc
from test_mapper_support import call, pods_file, running_mapper

OTHER_SA = "system:serviceaccount:shop:default"


def review(kube_server, token: str, audiences: list[str] | None = None) -> k8s.V1TokenReviewStatus:
    api = k8s.AuthenticationV1Api(kube_server.api_client())
    spec = {"token": token, **({"audiences": audiences} if audiences is not None else {})}
    return api.create_token_review({"spec": spec}).status


def test_bed_reviews_audiences_like_an_api_server(kube_server):
    kube_server.register_token("projected", DEFAULT_AGENT_SA, audiences=["clearance-mapper", "vault"])
    kube_server.register_token("legacy", DEFAULT_AGENT_SA)  # no audiences: the API server's own
    both = review(kube_server, "projected", ["other", "clearance-mapper", "vault"])
    assert both.authenticated is True and both.audiences == ["clearance-mapper", "vault"]
    assert both.user.username == DEFAULT_AGENT_SA
    wrong = review(kube_server, "projected", ["other"])
    assert wrong.authenticated is False and "is invalid for the target audiences" in wrong.error
    assert "projected" not in wrong.error  # the token is never echoed
    assert review(kube_server, "projected").authenticated is False  # the API server's audience is not its own
    legacy = review(kube_server, "legacy")
    assert legacy.authenticated is True and legacy.audiences == [API_AUDIENCE]
    assert review(kube_server, "legacy", ["clearance-mapper"]).authenticated is False
    assert review(kube_server, "unknown", ["clearance-mapper"]).authenticated is False


def _refused(m, token: str, seq: int) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        m.report([call()], seq=seq, token=token)
    return exc.value


def test_right_audience_accepted_wrong_audience_and_wrong_account_refused(kube_server, tmp_path):
    kube_server.register_token("agent-projected", DEFAULT_AGENT_SA, audiences=[DEFAULT_AGENT_AUDIENCE])
    kube_server.register_token("agent-legacy", DEFAULT_AGENT_SA)  # a token for the API server itself
    kube_server.register_token("agent-for-vault", DEFAULT_AGENT_SA, audiences=["vault"])
    kube_server.register_token("other-projected", OTHER_SA, audiences=[DEFAULT_AGENT_AUDIENCE])
    auth = TokenReviewer(kube_server.api_client())
    with running_mapper(tmp_path, authenticator=auth) as m:
        assert m.report([call()], token="agent-projected").accepted == 1
        legacy = _refused(m, "agent-legacy", 2)
        vault = _refused(m, "agent-for-vault", 3)
        other = _refused(m, "other-projected", 4)
    for wrong_audience in (legacy, vault):
        assert wrong_audience.code() == grpc.StatusCode.UNAUTHENTICATED
        assert wrong_audience.details() == "the token was not accepted by TokenReview for audience clearance-mapper"
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED
    assert other.details().startswith(f"{OTHER_SA} is not the agent's ServiceAccount")
    sent = [r for r in kube_server.requests if r.path.endswith("/tokenreviews")]
    assert len(sent) == 4


def test_the_audience_is_configurable(kube_server, tmp_path):
    kube_server.register_token("agent-legacy", DEFAULT_AGENT_SA)
    auth = TokenReviewer(kube_server.api_client(), audiences=(API_AUDIENCE,))
    with running_mapper(tmp_path, authenticator=auth) as m:
        assert m.report([call()], token="agent-legacy").accepted == 1


def test_a_review_that_does_not_confirm_the_audience_is_refused(kube_server, tmp_path):
    """An authenticator that ignores spec.audiences answers without ours: that is not enough."""
    kube_server.register_token("agent-for-vault", DEFAULT_AGENT_SA, audiences=["vault"])
    kube_server.handler.tokens.audience_aware = False
    assert review(kube_server, "agent-for-vault", [DEFAULT_AGENT_AUDIENCE]).authenticated is True
    with running_mapper(tmp_path, authenticator=TokenReviewer(kube_server.api_client())) as m:
        refused = _refused(m, "agent-for-vault", 1)
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused.details() == "TokenReview did not confirm the audience clearance-mapper for this token"


def test_empty_audience_is_a_start_up_error(kube_server):
    with pytest.raises(ValueError, match="--agent-audience"):
        TokenReviewer(kube_server.api_client(), audiences=("",))


def test_a_recent_acceptance_survives_a_brief_api_outage(kube_server):
    kube_server.register_token("agent-projected", DEFAULT_AGENT_SA, audiences=[DEFAULT_AGENT_AUDIENCE])
    kube_server.register_token("agent-other", DEFAULT_AGENT_SA, audiences=[DEFAULT_AGENT_AUDIENCE])
    md = lambda token: (("authorization", f"Bearer {token}"),)  # noqa: E731
    lenient = TokenReviewer(kube_server.api_client(), ttl_s=0.0)
    strict = TokenReviewer(kube_server.api_client(), ttl_s=0.0, stale_ok_s=0.0)
    assert lenient.check(md("agent-projected")) == strict.check(md("agent-projected")) == DEFAULT_AGENT_SA
    kube_server.stop()  # the API goes away; every answer needs a new review now (ttl 0)
    assert lenient.check(md("agent-projected")) == DEFAULT_AGENT_SA
    with pytest.raises(Refusal, match="cannot verify the agent token"):
        lenient.check(md("agent-other"))  # never accepted before: no grace
    with pytest.raises(Refusal, match="cannot verify the agent token"):
        strict.check(md("agent-projected"))


@pytest.mark.parametrize("how", ["flag", "env", "default"])
def test_mapper_flag_and_env_choose_the_audience(kube_server, tmp_path, monkeypatch, how):
    audience = "custom-aud" if how != "default" else DEFAULT_AGENT_AUDIENCE
    kube_server.register_token("agent-custom", DEFAULT_AGENT_SA, audiences=[audience])
    kube_server.register_token("agent-other", DEFAULT_AGENT_SA, audiences=["not-ours"])
    if how == "env":
        monkeypatch.setenv("CLEARANCE_AGENT_AUDIENCE", audience)
    else:
        monkeypatch.delenv("CLEARANCE_AGENT_AUDIENCE", raising=False)
    tmp_path.mkdir(exist_ok=True)
    pf = pods_file(tmp_path / "pods.yaml", [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5")])
    argv = ["mapper", "--kubeconfig", str(kube_server.kubeconfig), "--db", str(tmp_path / "m.db"),
            "--pods-file", str(pf), *(["--agent-audience", audience] if how == "flag" else [])]
    args = build_parser().parse_args(argv)
    assert args.agent_audience == audience
    mapper = build(args)
    server, port = serve(mapper, "127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = report_pb2_grpc.AgentReportsStub(channel)

    def send(token: str, seq: int) -> report_pb2.ReportResponse:
        return stub.Report(report_pb2.ReportRequest(agent_id="n/b", node="n", sequence=seq, calls=[call()]),
                           metadata=(("authorization", f"Bearer {token}"),), timeout=30)
    try:
        assert send("agent-custom", 1).accepted == 1
        with pytest.raises(grpc.RpcError) as exc:
            send("agent-other", 2)
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        channel.close()
        server.stop(None).wait()
        mapper.store.close()
    assert Path(args.db).exists()


def test_the_chart_mapper_accepts_the_chart_agent_token(monkeypatch):
    """The mapper's rendered args and env parse with the real CLI; its audience is the one the agent
    DaemonSet projects into the agent's token, and the web page listens on all interfaces."""
    from test_chart import REQUIRED, kinds, render

    docs = kinds(render(REQUIRED))
    mapper = docs["Deployment/clearance-mapper"]["spec"]["template"]["spec"]["containers"][0]
    agent_pod = docs["DaemonSet/clearance-agent"]["spec"]["template"]["spec"]
    projected = [s["serviceAccountToken"] for v in agent_pod["volumes"] if "projected" in v
                 for s in v["projected"]["sources"] if "serviceAccountToken" in s]
    for var in mapper["env"]:
        monkeypatch.setenv(var["name"], var["value"])
    args = build_parser().parse_args(mapper["args"])
    assert [t["audience"] for t in projected] == [args.agent_audience]
    assert args.agent_service_account == [f"system:serviceaccount:clearance-system:{agent_pod['serviceAccountName']}"]
    assert args.web_host == "0.0.0.0" and args.web_port > 0


def test_the_shared_token_file_is_re_read_only_when_it_changed(tmp_path):
    import os

    from clearance.mapper.auth import SharedToken

    path = tmp_path / "token"
    path.write_text("a" * 32)
    auth = SharedToken(path)
    assert auth.check((("authorization", "Bearer " + "a" * 32),)) == "agent"
    st = os.stat(path)
    path.write_text("b" * 32)  # same size, same inode, and the mtime put back: no change to see
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(Refusal):
        auth.check((("authorization", "Bearer " + "b" * 32),))  # so the file was not read again
    assert auth.check((("authorization", "Bearer " + "a" * 32),)) == "agent"
    replaced = tmp_path / "token.new"
    replaced.write_text("c" * 32)
    os.replace(replaced, path)  # rotated as a mounted Secret is: a new inode
    assert auth.check((("authorization", "Bearer " + "c" * 32),)) == "agent"
    with pytest.raises(Refusal):
        auth.check((("authorization", "Bearer " + "a" * 32),))
