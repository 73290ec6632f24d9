"""Catalog rows for the storage data planes: Blob, Data Lake (dfs), Queue, Table, Files.

One line per wire signature, in the shape of the reference tables (§1, §2, Appendix A):

    methods | level | required query | required headers | operation | actions | dataActions | scope | extra | conf

* ``methods``: one or more, comma-separated (``GET,HEAD``).
* ``level``: the path level (see ``paths.py``); ``*`` is every level of the service.
* required query / headers: ``key=value&key=value``; a bare key (no ``=``) needs presence only.
* actions / dataActions: comma-separated, relative to the service's prefixes (``PREFIXES``);
  a name starting with ``Microsoft.`` is taken as is. ``-`` is none.
* scope: a scope level of ``scopes.py``.
* extra: ``source`` (the ``x-ms-copy-source`` also needs read on the source) and/or
  ``header>perm,perm`` (add these dataActions when the header is present).
* conf: the reference's confidence tag (D documented, A Azurite, I inferred, C conflicting).
"""
from __future__ import annotations

BLOB = """
GET        | service   | comp=list                              |                                    | ListContainers            | containers/read          | -                    | account   |        | D
GET        | service   | restype=service&comp=properties        |                                    | GetBlobServiceProperties  | read                     | -                    | account   |        | D
PUT        | service   | restype=service&comp=properties        |                                    | SetBlobServiceProperties  | write                    | -                    | account   |        | D
GET        | service   | restype=service&comp=stats             |                                    | GetBlobServiceStats       | read                     | -                    | account   |        | D
OPTIONS    | *         |                                        |                                    | BlobPreflightRequest      | -                        | -                    | account   |        | D
GET,HEAD   | service   | restype=account&comp=properties        |                                    | GetAccountInformation     | getInfo/action           | -                    | account   |        | C
POST       | service   | restype=service&comp=userdelegationkey |                                    | GetUserDelegationKey      | generateUserDelegationKey/action | -            | account   |        | D
GET        | service   | comp=blobs                             |                                    | FindBlobsByTags           | -                        | blobs/filter/action  | account   |        | D
POST       | service   | comp=batch                             |                                    | BlobBatch                 | containers/write         | -                    | account   |        | C
PUT        | container | restype=container                      |                                    | CreateContainer           | containers/write         | -                    | account   |        | D
GET,HEAD   | container | restype=container                      |                                    | GetContainerProperties    | containers/read          | -                    | container |        | D
GET,HEAD   | container | restype=container&comp=metadata        |                                    | GetContainerMetadata      | containers/read          | -                    | container |        | D
PUT        | container | restype=container&comp=metadata        |                                    | SetContainerMetadata      | containers/write         | -                    | container |        | D
GET,HEAD   | container | restype=container&comp=acl             |                                    | GetContainerACL           | containers/getAcl/action | -                    | container |        | C
PUT        | container | restype=container&comp=acl             |                                    | SetContainerACL           | containers/setAcl/action | -                    | container |        | C
PUT        | container | restype=container&comp=lease           |                                    | LeaseContainer            | containers/write         | -                    | container |        | D
PUT        | container | restype=container&comp=lease           | x-ms-lease-action=acquire          | AcquireContainerLease     | containers/write         | -                    | container |        | D
PUT        | container | restype=container&comp=lease           | x-ms-lease-action=renew            | RenewContainerLease       | containers/write         | -                    | container |        | D
PUT        | container | restype=container&comp=lease           | x-ms-lease-action=change           | ChangeContainerLease      | containers/write         | -                    | container |        | D
PUT        | container | restype=container&comp=lease           | x-ms-lease-action=release          | ReleaseContainerLease     | containers/write         | -                    | container |        | D
PUT        | container | restype=container&comp=lease           | x-ms-lease-action=break            | BreakContainerLease       | containers/write         | -                    | container |        | D
DELETE     | container | restype=container                      |                                    | DeleteContainer           | containers/delete        | -                    | container |        | D
PUT        | container | restype=container&comp=undelete        |                                    | RestoreContainer          | containers/write         | -                    | account   |        | D
GET        | container | restype=container&comp=list            |                                    | ListBlobs                 | -                        | blobs/read           | container |        | D
GET        | container | restype=container&comp=blobs           |                                    | FindBlobsByTags           | -                        | blobs/filter/action  | container |        | D
POST       | container | restype=container&comp=batch           |                                    | BlobBatch                 | containers/write         | -                    | container |        | C
PUT        | container | restype=container&comp=rename          |                                    | RenameContainer           | containers/write         | -                    | account   |        | I
GET,HEAD   | container | restype=account&comp=properties        |                                    | GetAccountInformation     | getInfo/action           | -                    | container |        | C
PUT        | blob      |                                        | x-ms-blob-type=BlockBlob           | PutBlob                   | -                        | blobs/write          | container |        | D
PUT        | blob      |                                        | x-ms-blob-type=BlockBlob&if-none-match=* | PutBlob             | -                        | blobs/add/action     | container |        | D
PUT        | blob      |                                        | x-ms-blob-type=PageBlob            | PutBlob                   | -                        | blobs/write          | container |        | D
PUT        | blob      |                                        | x-ms-blob-type=PageBlob&if-none-match=* | PutBlob              | -                        | blobs/add/action     | container |        | D
PUT        | blob      |                                        | x-ms-blob-type=AppendBlob          | PutBlob                   | -                        | blobs/write          | container |        | D
PUT        | blob      |                                        | x-ms-blob-type=AppendBlob&if-none-match=* | PutBlob            | -                        | blobs/add/action     | container |        | D
PUT        | blob      |                                        | x-ms-copy-source&x-ms-blob-type=BlockBlob | PutBlobFromURL   | -                        | blobs/write          | container | source | D
PUT        | blob      |                                        | x-ms-copy-source&x-ms-blob-type=BlockBlob&if-none-match=* | PutBlobFromURL | -        | blobs/add/action     | container | source | D
GET        | blob      |                                        |                                    | GetBlob                   | -                        | blobs/read           | container |        | D
HEAD       | blob      |                                        |                                    | GetBlobProperties         | -                        | blobs/read           | container |        | D
PUT        | blob      | comp=properties                        |                                    | SetBlobProperties         | -                        | blobs/write          | container |        | D
GET,HEAD   | blob      | comp=metadata                          |                                    | GetBlobMetadata           | -                        | blobs/read           | container |        | D
PUT        | blob      | comp=metadata                          |                                    | SetBlobMetadata           | -                        | blobs/write          | container |        | D
GET        | blob      | comp=tags                              |                                    | GetBlobTags               | -                        | blobs/tags/read      | container |        | D
PUT        | blob      | comp=tags                              |                                    | SetBlobTags               | -                        | blobs/tags/write     | container |        | D
PUT        | blob      | comp=lease                             |                                    | LeaseBlob                 | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=lease                             | x-ms-lease-action=acquire          | AcquireBlobLease          | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=lease                             | x-ms-lease-action=renew            | RenewBlobLease            | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=lease                             | x-ms-lease-action=change           | ChangeBlobLease           | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=lease                             | x-ms-lease-action=release          | ReleaseBlobLease          | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=lease                             | x-ms-lease-action=break            | BreakBlobLease            | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=snapshot                          |                                    | SnapshotBlob              | -                        | blobs/add/action     | container |        | D
PUT        | blob      |                                        | x-ms-copy-source                 | CopyBlob                  | -                        | blobs/write          | container | source | D
PUT        | blob      |                                        | x-ms-copy-source&if-none-match=* | CopyBlob                  | -                        | blobs/add/action     | container | source | D
PUT        | blob      |                                        | x-ms-copy-source&x-ms-requires-sync=true | CopyBlobFromURL   | -                        | blobs/write          | container | source | D
PUT        | blob      |                                        | x-ms-copy-source&x-ms-requires-sync=true&if-none-match=* | CopyBlobFromURL | -       | blobs/add/action     | container | source | D
PUT        | blob      | comp=copy                              |                                    | AbortCopyBlob             | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=copy                              | x-ms-copy-action=abort             | AbortCopyBlob             | -                        | blobs/write          | container |        | D
DELETE     | blob      |                                        |                                    | DeleteBlob                | -                        | blobs/delete         | container |        | D
DELETE     | blob      | versionid                            |                                    | DeleteBlobVersion         | -                        | blobs/deleteBlobVersion/action | container |  | D
DELETE     | blob      | deletetype=permanent&versionid       |                                    | PermanentDeleteBlob       | -                        | blobs/permanentDelete/action | container |    | D
DELETE     | blob      | deletetype=permanent&snapshot        |                                    | PermanentDeleteBlob       | -                        | blobs/permanentDelete/action | container |    | D
PUT        | blob      | comp=undelete                          |                                    | UndeleteBlob              | containers/write         | -                    | container |        | C
PUT        | blob      | comp=tier                              |                                    | SetBlobTier               | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=expiry                            |                                    | SetBlobExpiry             | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=immutabilityPolicies              |                                    | SetBlobImmutabilityPolicy | -                        | blobs/immutableStorage/runAsSuperUser/action | container | | C
DELETE     | blob      | comp=immutabilityPolicies              |                                    | DeleteBlobImmutabilityPolicy | -                     | blobs/immutableStorage/runAsSuperUser/action | container | | C
PUT        | blob      | comp=legalhold                         |                                    | SetBlobLegalHold          | -                        | blobs/immutableStorage/runAsSuperUser/action | container | | C
POST       | blob      | comp=query                             |                                    | QueryBlobContents         | -                        | blobs/read           | container |        | D
PUT        | blob      | comp=block                             |                                    | PutBlock                  | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=block                             | x-ms-copy-source                 | PutBlockFromURL           | -                        | blobs/write          | container | source | D
PUT        | blob      | comp=blocklist                         |                                    | PutBlockList              | -                        | blobs/write          | container |        | D
GET        | blob      | comp=blocklist                         |                                    | GetBlockList              | -                        | blobs/read           | container |        | D
PUT        | blob      | comp=page                              |                                    | PutPage                   | -                        | blobs/write          | container |        | D
PUT        | blob      | comp=page                              | x-ms-copy-source                 | PutPageFromURL            | -                        | blobs/write          | container | source | D
GET        | blob      | comp=pagelist                          |                                    | GetPageRanges             | -                        | blobs/read           | container |        | D
PUT        | blob      | comp=incrementalcopy                   |                                    | IncrementalCopyBlob       | -                        | blobs/write          | container | source | D
PUT        | blob      | comp=appendblock                       |                                    | AppendBlock               | -                        | blobs/add/action     | container |        | D
PUT        | blob      | comp=appendblock                       | x-ms-copy-source                 | AppendBlockThroughCopy    | -                        | blobs/add/action     | container | source | D
PUT        | blob      | comp=seal                              |                                    | SealBlob                  | -                        | blobs/write          | container |        | I
GET,HEAD   | blob      | restype=account&comp=properties        |                                    | GetAccountInformation     | getInfo/action           | -                    | container |        | C
"""

DFS = """
GET        | service   | resource=account                       |                                    | ListFilesystems           | containers/read          | -                    | account   |        | I
OPTIONS    | *         |                                        |                                    | PreflightRequest          | -                        | -                    | account   |        | D
PUT        | container | resource=filesystem                    |                                    | CreateFilesystem          | containers/write         | -                    | account   |        | I
HEAD       | container | resource=filesystem                    |                                    | GetFilesystemProperties   | containers/read          | -                    | container |        | I
PATCH      | container | resource=filesystem                    |                                    | SetFilesystemProperties   | containers/write         | -                    | container |        | I
DELETE     | container | resource=filesystem                    |                                    | DeleteFilesystem          | containers/delete        | -                    | container |        | I
GET        | container | resource=filesystem                    |                                    | ListPaths                 | -                        | blobs/read           | container |        | I
PUT        | blob      | resource=file                          |                                    | CreatePathFile            | -                        | blobs/write          | container |        | I
PUT        | blob      | resource=file                          | if-none-match=*                    | CreatePathFile            | -                        | blobs/add/action     | container |        | I
PUT        | blob      | resource=directory                     |                                    | CreatePathDir             | -                        | blobs/write          | container |        | I
PUT        | blob      | resource=directory                     | if-none-match=*                    | CreatePathDir             | -                        | blobs/add/action     | container |        | I
PUT        | blob      |                                        | x-ms-rename-source               | RenamePath                | -                        | blobs/move/action    | container |        | D
PATCH      | blob      | action=append                          |                                    | AppendFile                | -                        | blobs/write          | container |        | I
PATCH      | blob      | action=flush                           |                                    | FlushFile                 | -                        | blobs/write          | container |        | I
PATCH      | blob      | action=setProperties                   |                                    | SetFileProperties         | -                        | blobs/write          | container |        | I
PATCH      | blob      | action=setAccessControl                |                                    | SetPathAccessControl      | -                        | blobs/modifyPermissions/action | container | | D
PATCH      | blob      | action=setAccessControl                | x-ms-owner                       | SetPathAccessControl      | -                        | blobs/manageOwnership/action | container | x-ms-group>blobs/manageOwnership/action x-ms-acl>blobs/modifyPermissions/action x-ms-permissions>blobs/modifyPermissions/action | D
PATCH      | blob      | action=setAccessControl                | x-ms-group                       | SetPathAccessControl      | -                        | blobs/manageOwnership/action | container | x-ms-owner>blobs/manageOwnership/action x-ms-acl>blobs/modifyPermissions/action x-ms-permissions>blobs/modifyPermissions/action | D
PATCH      | blob      | action=setAccessControlRecursive       |                                    | SetPathAccessControlRecursive | -                    | blobs/modifyPermissions/action | container | | D
HEAD       | blob      |                                        |                                    | GetPathProperties         | -                        | blobs/read           | container |        | I
HEAD       | blob      | action=getStatus                       |                                    | GetPathStatus             | -                        | blobs/read           | container |        | I
HEAD       | blob      | action=getAccessControl                |                                    | GetPathAccessControl      | -                        | blobs/read           | container |        | I
GET        | blob      |                                        |                                    | ReadFile                  | -                        | blobs/read           | container |        | I
DELETE     | blob      |                                        |                                    | DeletePath                | -                        | blobs/delete         | container |        | I
POST       | blob      |                                        | x-ms-lease-action                | LeasePath                 | -                        | blobs/write          | container |        | I
"""

QUEUE = """
GET        | service   | comp=list                              |                                    | ListQueues                | queues/read              | -                    | account   |        | D
GET        | service   | restype=service&comp=properties        |                                    | GetQueueServiceProperties | read                     | -                    | account   |        | D
PUT        | service   | restype=service&comp=properties        |                                    | SetQueueServiceProperties | read                     | -                    | account   |        | D
GET        | service   | restype=service&comp=stats             |                                    | GetQueueServiceStats      | read                     | -                    | account   |        | D
POST       | service   | restype=service&comp=userdelegationkey |                                    | GetUserDelegationKey      | generateUserDelegationKey/action | -            | account   |        | D
OPTIONS    | *         |                                        |                                    | QueuePreflightRequest     | -                        | -                    | account   |        | D
PUT        | queue     |                                        |                                    | CreateQueue               | queues/write             | -                    | account   |        | D
DELETE     | queue     |                                        |                                    | DeleteQueue               | queues/delete            | -                    | queue     |        | D
GET,HEAD   | queue     | comp=metadata                          |                                    | GetQueueMetadata          | queues/read              | -                    | queue     |        | D
PUT        | queue     | comp=metadata                          |                                    | SetQueueMetadata          | queues/write             | -                    | queue     |        | D
GET,HEAD   | queue     | comp=acl                               |                                    | GetQueueACL               | queues/getAcl/action     | -                    | queue     |        | C
PUT        | queue     | comp=acl                               |                                    | SetQueueACL               | queues/setAcl/action     | -                    | queue     |        | C
POST       | messages  |                                        |                                    | PutMessage                | -                        | messages/add/action  | queue     |        | D
GET        | messages  |                                        |                                    | GetMessages               | -                        | messages/process/action | queue  |        | D
GET        | messages  | peekonly=true                          |                                    | PeekMessages              | -                        | messages/read        | queue     |        | D
DELETE     | messages  |                                        |                                    | ClearMessages             | -                        | messages/delete      | queue     |        | D
PUT        | message   |                                        |                                    | UpdateMessage             | -                        | messages/write       | queue     |        | D
DELETE     | message   |                                        |                                    | DeleteMessage             | -                        | messages/process/action | queue  |        | D
"""

TABLE = """
GET        | service   | restype=service&comp=properties        |                                    | GetTableServiceProperties | read                     | -                    | account   |        | D
PUT        | service   | restype=service&comp=properties        |                                    | SetTableServiceProperties | write                    | -                    | account   |        | D
GET        | service   | restype=service&comp=stats             |                                    | GetTableServiceStats      | read                     | -                    | account   |        | D
POST       | service   | restype=service&comp=userdelegationkey |                                    | GetUserDelegationKey      | generateUserDelegationKey/action | -            | account   |        | I
OPTIONS    | *         |                                        |                                    | TablePreflightRequest     | -                        | -                    | account   |        | D
GET        | tables    |                                        |                                    | QueryTables               | tables/read              | -                    | account   |        | D
POST       | tables    |                                        |                                    | CreateTable               | tables/write             | -                    | account   |        | D
GET        | tablename |                                        |                                    | QueryTables               | tables/read              | -                    | table     |        | I
DELETE     | tablename |                                        |                                    | DeleteTable               | tables/delete            | -                    | table     |        | D
GET,HEAD   | table     | comp=acl                               |                                    | GetTableACL               | tables/getAcl/action     | -                    | table     |        | C
PUT        | table     | comp=acl                               |                                    | SetTableACL               | tables/setAcl/action     | -                    | table     |        | C
GET        | entities  |                                        |                                    | QueryEntities             | -                        | entities/read        | table     |        | D
GET        | entity    |                                        |                                    | QueryEntities             | -                        | entities/read        | table     |        | D
POST       | table     |                                        |                                    | InsertEntity              | -                        | entities/add/action  | table     |        | D
PUT        | entity    |                                        | if-match                         | UpdateEntity              | -                        | entities/update/action | table   |        | D
PUT        | entity    |                                        |                                    | InsertOrReplaceEntity     | -                        | entities/add/action,entities/update/action | table | | D
MERGE,PATCH | entity   |                                        | if-match                         | MergeEntity               | -                        | entities/update/action | table   |        | D
MERGE,PATCH | entity   |                                        |                                    | InsertOrMergeEntity       | -                        | entities/add/action,entities/update/action | table | | D
DELETE     | entity    |                                        |                                    | DeleteEntity              | -                        | entities/delete      | table     |        | D
POST       | batch     |                                        |                                    | EntityGroupTransaction    | -                        | -                    | account   |        | D
"""

# R, W, P are the reference's shorthands (§2.3): read, write (each with its backup-semantics
# action) and modify-permissions. Share-level operations are *actions* on ``fileServices/shares``.
FILE = """
GET        | service   | restype=service&comp=properties        |                                    | GetFileServiceProperties  | read                     | -                    | account   |        | D
PUT        | service   | restype=service&comp=properties        |                                    | SetFileServiceProperties  | write                    | -                    | account   |        | D
GET        | service   | comp=list                              |                                    | ListShares                | shares/read              | -                    | account   |        | D
POST       | service   | restype=service&comp=userdelegationkey |                                    | GetUserDelegationKey      | generateUserDelegationKey/action | -            | account   |        | I
OPTIONS    | *         |                                        |                                    | FilePreflightRequest      | -                        | -                    | account   |        | D
PUT        | share     | restype=share                          |                                    | CreateShare               | shares/write             | -                    | account   |        | D
PUT        | share     | restype=share&comp=snapshot            |                                    | SnapshotShare             | shares/write             | -                    | sharearm  |        | D
GET,HEAD   | share     | restype=share                          |                                    | GetShareProperties        | shares/read              | -                    | sharearm  |        | D
PUT        | share     | restype=share&comp=properties          |                                    | SetShareProperties        | shares/write             | -                    | sharearm  |        | D
GET,HEAD   | share     | restype=share&comp=metadata            |                                    | GetShareMetadata          | shares/read              | -                    | sharearm  |        | D
PUT        | share     | restype=share&comp=metadata            |                                    | SetShareMetadata          | shares/write             | -                    | sharearm  |        | D
GET,HEAD   | share     | restype=share&comp=acl                 |                                    | GetShareACL               | shares/read              | -                    | sharearm  |        | D
PUT        | share     | restype=share&comp=acl                 |                                    | SetShareACL               | shares/write             | -                    | sharearm  |        | D
GET        | share     | restype=share&comp=stats               |                                    | GetShareStats             | shares/read              | -                    | sharearm  |        | D
DELETE     | share     | restype=share                          |                                    | DeleteShare               | shares/delete            | -                    | sharearm  |        | D
PUT        | share     | restype=share&comp=undelete            |                                    | RestoreShare              | shares/restore/action    | -                    | account   |        | D
PUT        | share     | restype=share&comp=lease               |                                    | LeaseShare                | shares/lease/action      | -                    | sharearm  |        | D
PUT        | share     | restype=share&comp=filepermission      |                                    | CreatePermission          | -                        | P,writeFileBackupSemantics/action | share |  | D
GET        | share     | restype=share&comp=filepermission      |                                    | GetPermission             | -                        | R                    | share     |        | D
GET        | share     | restype=directory&comp=list            |                                    | ListDirectoriesAndFiles   | -                        | R                    | share     |        | D
GET        | path      | restype=directory&comp=list            |                                    | ListDirectoriesAndFiles   | -                        | R                    | share     |        | D
PUT        | path      | restype=directory                      |                                    | CreateDirectory           | -                        | W                    | share     |        | D
GET,HEAD   | path      | restype=directory                      |                                    | GetDirectoryProperties    | -                        | R                    | share     |        | D
GET,HEAD   | path      | restype=directory&comp=metadata        |                                    | GetDirectoryMetadata      | -                        | R                    | share     |        | D
PUT        | path      | restype=directory&comp=properties      |                                    | SetDirectoryProperties    | -                        | W                    | share     | x-ms-file-permission>P x-ms-file-permission-key>P | D
PUT        | path      | restype=directory&comp=metadata        |                                    | SetDirectoryMetadata      | -                        | W                    | share     |        | D
DELETE     | path      | restype=directory                      |                                    | DeleteDirectory           | -                        | W                    | share     |        | D
PUT        | path      | restype=directory&comp=rename          |                                    | RenameDirectory           | -                        | W                    | share     |        | D
GET        | path      | restype=directory&comp=listhandles     |                                    | ListHandles               | -                        | R                    | share     |        | D
PUT        | path      | restype=directory&comp=forceclosehandles |                                  | ForceCloseHandles         | -                        | W                    | share     |        | D
PUT        | path      |                                        | x-ms-type=file                     | CreateFile                | -                        | W                    | share     |        | D
GET        | path      |                                        |                                    | GetFile                   | -                        | R                    | share     |        | D
HEAD       | path      |                                        |                                    | GetFileProperties         | -                        | R                    | share     |        | D
PUT        | path      | comp=properties                        |                                    | SetFileProperties         | -                        | W                    | share     | x-ms-file-permission>P x-ms-file-permission-key>P | D
GET,HEAD   | path      | comp=metadata                          |                                    | GetFileMetadata           | -                        | R                    | share     |        | D
PUT        | path      | comp=metadata                          |                                    | SetFileMetadata           | -                        | W                    | share     |        | D
PUT        | path      | comp=range                             |                                    | PutRange                  | -                        | W                    | share     |        | D
PUT        | path      | comp=range                             | x-ms-copy-source                 | PutRangeFromURL           | -                        | W                    | share     | source | D
GET        | path      | comp=rangelist                         |                                    | ListRanges                | -                        | R                    | share     |        | D
DELETE     | path      |                                        |                                    | DeleteFile                | -                        | W                    | share     |        | D
PUT        | path      |                                        | x-ms-copy-source                 | CopyFile                  | -                        | W                    | share     | source x-ms-file-permission>P x-ms-file-permission-key>P | D
PUT        | path      | comp=copy                              |                                    | AbortCopyFile             | -                        | W                    | share     |        | D
GET        | path      | comp=listhandles                       |                                    | ListHandles               | -                        | R                    | share     |        | D
PUT        | path      | comp=forceclosehandles                 |                                    | ForceCloseHandles         | -                        | W                    | share     |        | D
PUT        | path      | comp=lease                             |                                    | LeaseFile                 | -                        | W                    | share     |        | D
PUT        | path      | comp=rename                            |                                    | RenameFile                | -                        | W                    | share     |        | D
"""

_SA = "Microsoft.Storage/storageAccounts/"

PREFIXES: dict[str, tuple[str, str]] = {
    # service: (actions prefix, dataActions prefix)
    "blob": (_SA + "blobServices/", _SA + "blobServices/containers/"),
    "dfs": (_SA + "blobServices/", _SA + "blobServices/containers/"),
    "queue": (_SA + "queueServices/", _SA + "queueServices/queues/"),
    "table": (_SA + "tableServices/", _SA + "tableServices/tables/"),
    "file": (_SA + "fileServices/", _SA + "fileServices/"),
}

MACROS: dict[str, tuple[str, ...]] = {
    "R": ("fileshares/files/read", "readFileBackupSemantics/action"),
    "W": ("fileshares/files/write", "writeFileBackupSemantics/action"),
    "P": ("fileshares/files/modifypermissions/action",),
}

TABLES: dict[str, str] = {"blob": BLOB, "dfs": DFS, "queue": QUEUE, "table": TABLE, "file": FILE}
