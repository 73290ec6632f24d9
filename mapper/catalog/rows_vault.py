"""Catalog rows for the Key Vault data plane (reference §2.5); same columns as ``rows_storage``.

The level is a path pattern: a literal segment must match (it scores, so ``/keys/{n}/versions``
beats ``/keys/{n}/{v}``), ``{n}`` is the object's name (it names the ``object`` scope) and
``{v}`` is any version. Every permission is a dataAction under ``Microsoft.KeyVault/vaults/``.
Operations that bring an object into existence (set, create, import, restore, recover) are
granted on the vault: an assignment cannot be made on an object that does not exist yet.
Key operations also appear without a version (the agent drops the empty segment of
``/keys/{n}//encrypt``).
"""
from __future__ import annotations

VAULT = """
GET        | /secrets                        |  |  | GetSecrets               | - | secrets/readMetadata/action  | vault  |  | D
GET        | /secrets/{n}                    |  |  | GetSecret                | - | secrets/getSecret/action     | object |  | D
GET        | /secrets/{n}/{v}                |  |  | GetSecret                | - | secrets/getSecret/action     | object |  | D
GET        | /secrets/{n}/versions           |  |  | GetSecretVersions        | - | secrets/readMetadata/action  | object |  | D
PUT        | /secrets/{n}                    |  |  | SetSecret                | - | secrets/setSecret/action     | vault  |  | D
PATCH      | /secrets/{n}/{v}                |  |  | UpdateSecret             | - | secrets/update/action        | object |  | D
PATCH      | /secrets/{n}                    |  |  | UpdateSecret             | - | secrets/update/action        | object |  | D
DELETE     | /secrets/{n}                    |  |  | DeleteSecret             | - | secrets/delete               | object |  | D
POST       | /secrets/{n}/backup             |  |  | BackupSecret             | - | secrets/backup/action        | object |  | D
POST       | /secrets/restore                |  |  | RestoreSecret            | - | secrets/restore/action       | vault  |  | D
GET        | /deletedsecrets                 |  |  | GetDeletedSecrets        | - | secrets/readMetadata/action  | vault  |  | I
GET        | /deletedsecrets/{n}             |  |  | GetDeletedSecret         | - | secrets/readMetadata/action  | vault  |  | I
POST       | /deletedsecrets/{n}/recover     |  |  | RecoverDeletedSecret     | - | secrets/recover/action       | vault  |  | D
DELETE     | /deletedsecrets/{n}             |  |  | PurgeDeletedSecret       | - | secrets/purge/action         | vault  |  | D
GET        | /keys                           |  |  | GetKeys                  | - | keys/read                    | vault  |  | D
GET        | /keys/{n}                       |  |  | GetKey                   | - | keys/read                    | object |  | D
GET        | /keys/{n}/{v}                   |  |  | GetKey                   | - | keys/read                    | object |  | D
GET        | /keys/{n}/versions              |  |  | GetKeyVersions           | - | keys/read                    | object |  | D
POST       | /keys/{n}/create                |  |  | CreateKey                | - | keys/create/action           | vault  |  | D
PUT        | /keys/{n}                       |  |  | ImportKey                | - | keys/import/action           | vault  |  | D
PATCH      | /keys/{n}/{v}                   |  |  | UpdateKey                | - | keys/update/action           | object |  | D
PATCH      | /keys/{n}                       |  |  | UpdateKey                | - | keys/update/action           | object |  | D
DELETE     | /keys/{n}                       |  |  | DeleteKey                | - | keys/delete                  | object |  | D
POST       | /keys/{n}/{v}/encrypt           |  |  | Encrypt                  | - | keys/encrypt/action          | object |  | D
POST       | /keys/{n}/{v}/decrypt           |  |  | Decrypt                  | - | keys/decrypt/action          | object |  | D
POST       | /keys/{n}/{v}/wrapkey           |  |  | WrapKey                  | - | keys/wrap/action             | object |  | D
POST       | /keys/{n}/{v}/unwrapkey         |  |  | UnwrapKey                | - | keys/unwrap/action           | object |  | D
POST       | /keys/{n}/{v}/sign              |  |  | Sign                     | - | keys/sign/action             | object |  | D
POST       | /keys/{n}/{v}/verify            |  |  | Verify                   | - | keys/verify/action           | object |  | D
POST       | /keys/{n}/encrypt               |  |  | Encrypt                  | - | keys/encrypt/action          | object |  | D
POST       | /keys/{n}/decrypt               |  |  | Decrypt                  | - | keys/decrypt/action          | object |  | D
POST       | /keys/{n}/wrapkey               |  |  | WrapKey                  | - | keys/wrap/action             | object |  | D
POST       | /keys/{n}/unwrapkey             |  |  | UnwrapKey                | - | keys/unwrap/action           | object |  | D
POST       | /keys/{n}/sign                  |  |  | Sign                     | - | keys/sign/action             | object |  | D
POST       | /keys/{n}/verify                |  |  | Verify                   | - | keys/verify/action           | object |  | D
POST       | /keys/{n}/rotate                |  |  | RotateKey                | - | keys/rotate/action           | object |  | D
GET        | /keys/{n}/rotationpolicy        |  |  | GetKeyRotationPolicy     | - | keyrotationpolicies/read     | vault  |  | D
PUT        | /keys/{n}/rotationpolicy        |  |  | UpdateKeyRotationPolicy  | - | keyrotationpolicies/write    | vault  |  | D
POST       | /keys/{n}/{v}/release           |  |  | ReleaseKey               | - | keys/release/action          | object |  | D
POST       | /keys/{n}/release               |  |  | ReleaseKey               | - | keys/release/action          | object |  | D
POST       | /keys/{n}/backup                |  |  | BackupKey                | - | keys/backup/action           | object |  | D
POST       | /keys/restore                   |  |  | RestoreKey               | - | keys/restore/action          | vault  |  | D
GET        | /deletedkeys                    |  |  | GetDeletedKeys           | - | keys/read                    | vault  |  | I
GET        | /deletedkeys/{n}                |  |  | GetDeletedKey            | - | keys/read                    | vault  |  | I
POST       | /deletedkeys/{n}/recover        |  |  | RecoverDeletedKey        | - | keys/recover/action          | vault  |  | D
DELETE     | /deletedkeys/{n}                |  |  | PurgeDeletedKey          | - | keys/purge/action            | vault  |  | D
GET        | /certificates                   |  |  | GetCertificates          | - | certificates/read            | vault  |  | D
GET        | /certificates/{n}               |  |  | GetCertificate           | - | certificates/read            | object |  | D
GET        | /certificates/{n}/{v}           |  |  | GetCertificate           | - | certificates/read            | object |  | D
GET        | /certificates/{n}/versions      |  |  | GetCertificateVersions   | - | certificates/read            | object |  | D
GET        | /certificates/{n}/policy        |  |  | GetCertificatePolicy     | - | certificates/read            | object |  | D
GET        | /certificates/{n}/pending       |  |  | GetCertificateOperation  | - | certificates/read            | object |  | D
POST       | /certificates/{n}/create        |  |  | CreateCertificate        | - | certificates/create/action   | vault  |  | D
POST       | /certificates/{n}/import        |  |  | ImportCertificate        | - | certificates/import/action   | vault  |  | D
PATCH      | /certificates/{n}/{v}           |  |  | UpdateCertificate        | - | certificates/update/action   | object |  | D
PATCH      | /certificates/{n}               |  |  | UpdateCertificate        | - | certificates/update/action   | object |  | D
PATCH      | /certificates/{n}/policy        |  |  | UpdateCertificatePolicy  | - | certificates/update/action   | object |  | D
DELETE     | /certificates/{n}               |  |  | DeleteCertificate        | - | certificates/delete          | object |  | D
POST       | /certificates/{n}/backup        |  |  | BackupCertificate        | - | certificates/backup/action   | object |  | D
POST       | /certificates/restore           |  |  | RestoreCertificate       | - | certificates/restore/action  | vault  |  | D
GET        | /deletedcertificates            |  |  | GetDeletedCertificates   | - | certificates/read            | vault  |  | I
GET        | /deletedcertificates/{n}        |  |  | GetDeletedCertificate    | - | certificates/read            | vault  |  | I
POST       | /deletedcertificates/{n}/recover |  |  | RecoverDeletedCertificate | - | certificates/recover/action | vault  |  | D
DELETE     | /deletedcertificates/{n}        |  |  | PurgeDeletedCertificate  | - | certificates/purge/action    | vault  |  | D
GET        | /certificates/issuers           |  |  | GetCertificateIssuers    | - | certificatecas/read          | vault  |  | D
GET        | /certificates/issuers/{v}       |  |  | GetCertificateIssuer     | - | certificatecas/read          | vault  |  | D
PUT,PATCH  | /certificates/issuers/{v}       |  |  | SetCertificateIssuer     | - | certificatecas/write         | vault  |  | D
DELETE     | /certificates/issuers/{v}       |  |  | DeleteCertificateIssuer  | - | certificatecas/delete        | vault  |  | D
GET,PUT,DELETE | /certificates/contacts      |  |  | CertificateContacts      | - | certificatecontacts/write    | vault  |  | I
"""

PREFIX = "Microsoft.KeyVault/vaults/"
