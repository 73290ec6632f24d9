"""The Azurite bed: the real Storage SDK clients work over HTTPS with bearer tokens, both URL styles."""
from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from beds.azurite import Azurite

STYLES = ("path", "host")


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("style", STYLES)
def test_blob_round_trip(azurite: Azurite, style: str) -> None:
    svc = azurite.blob_service_client(style=style)
    container = svc.create_container(_name("c"))
    container.upload_blob("dir/a.txt", b"hello", overwrite=True)
    assert container.download_blob("dir/a.txt").readall() == b"hello"
    assert [b.name for b in container.list_blobs()] == ["dir/a.txt"]
    container.delete_container()


@pytest.mark.parametrize("style", STYLES)
def test_queue_round_trip(azurite: Azurite, style: str) -> None:
    svc = azurite.queue_service_client(style=style)
    q = svc.create_queue(_name("q"))
    q.send_message("m1")
    assert [m.content for m in q.receive_messages()] == ["m1"]
    svc.delete_queue(q.queue_name)


@pytest.mark.parametrize("style", STYLES)
def test_table_round_trip(azurite: Azurite, style: str) -> None:
    svc = azurite.table_service_client(style=style)
    table = svc.create_table(_name("t"))
    table.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 7})
    assert table.get_entity("p", "r")["v"] == 7
    svc.delete_table(table.table_name)


def test_second_account_is_separate(azurite: Azurite) -> None:
    name = _name("c")
    azurite.blob_service_client(account="clearancetwo").create_container(name)
    names = [c.name for c in azurite.blob_service_client().list_containers()]
    assert name not in names
    assert name in [c.name for c in azurite.blob_service_client(style="host", account="clearancetwo").list_containers()]


def test_bearer_auth_is_enforced(azurite: Azurite) -> None:
    """A token with the wrong audience is refused: OAuth is really on (the SDK is not anonymous)."""
    from azure.storage.blob import BlobServiceClient

    class WrongAudience:
        def get_token(self, *scopes: str, **kw: object):  # noqa: ANN202
            return azurite.credential().token("https://vault.azure.net")

    svc = BlobServiceClient(azurite.blob_url(), credential=WrongAudience(), **azurite.sdk_kwargs())
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as err:
        svc.create_container(_name("c"))
    assert err.value.status_code in (401, 403)


def test_untrusted_without_ca(azurite: Azurite) -> None:
    """HTTPS is real: without the test CA the client refuses the certificate."""
    from azure.core.exceptions import ServiceRequestError
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient(azurite.blob_url(), credential=azurite.credential(), retry_total=0)
    with pytest.raises(ServiceRequestError):
        svc.create_container(_name("c"))
