"""Check the fake OSS against the official Alibaba Cloud Python SDK (alibabacloud-oss-v2).

The SDK signs with V4 and checks CRC-64 on uploads and downloads. The script puts an object,
uploads one in three 200 KiB parts, heads and gets both, and expects a client with a wrong secret
to fail with SignatureDoesNotMatch. Every host name of the fake's endpoint resolves to 127.0.0.1
and any other name fails to resolve, so no request leaves the machine.

Prints one JSON object on stdout that maps each written key to its CRC-64 as the SDK saw it, and
exits non-zero on the first mismatch.
"""

import argparse
import json
import os
import socket
import sys

import alibabacloud_oss_v2 as oss
from alibabacloud_oss_v2.crc import Crc64

PART_SIZE = 200 * 1024


def pattern(length: int, seed: int) -> bytes:
    """Return the test bytes the Rust tests also build: byte i is (i * 31 + seed) mod 256."""
    return bytes((index * 31 + seed) % 256 for index in range(length))


def crc64(data: bytes) -> str:
    digest = Crc64(0)
    digest.update(data)
    return str(digest.sum64())


def route_names_to_loopback(endpoint_host: str) -> None:
    """Resolve the endpoint and every <bucket>.<endpoint> name to 127.0.0.1; reject other names."""
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name == endpoint_host or name.endswith("." + endpoint_host):
            return original("127.0.0.1", *args, **kwargs)
        if name in ("127.0.0.1", "localhost"):
            return original(name, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"fidelity script resolves only {endpoint_host}: {name}")

    socket.getaddrinfo = getaddrinfo


def make_client(args: argparse.Namespace, secret: str) -> oss.Client:
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(args.access_key_id, secret)
    config.region = args.region
    config.endpoint = f"http://oss-{args.region}.aliyuncs.com:{args.port}"
    config.signature_version = "v4"
    return oss.Client(config)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"fidelity check failed: {message}")


def put_and_read(client: oss.Client, bucket: str, key: str) -> str:
    data = pattern(300 * 1024, 1)
    put = client.put_object(oss.PutObjectRequest(bucket=bucket, key=key, body=data, metadata={"origin": "sdk"}))
    check(put.hash_crc64 == crc64(data), f"PutObject CRC {put.hash_crc64} differs from {crc64(data)}")

    head = client.head_object(oss.HeadObjectRequest(bucket=bucket, key=key))
    check(head.content_length == len(data), f"HeadObject length {head.content_length}, expected {len(data)}")
    check(head.hash_crc64 == crc64(data), f"HeadObject CRC {head.hash_crc64} differs from {crc64(data)}")
    check(head.metadata.get("origin") == "sdk", f"HeadObject metadata {head.metadata}")

    get = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    check(get.body.read() == data, "GetObject body differs from what was put")
    return put.hash_crc64


def multipart_and_read(client: oss.Client, bucket: str, key: str) -> str:
    parts = [pattern(PART_SIZE, seed) for seed in (2, 3, 4)]
    whole = b"".join(parts)
    upload = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key=key))
    uploaded = []
    for number, body in enumerate(parts, start=1):
        result = client.upload_part(
            oss.UploadPartRequest(bucket=bucket, key=key, upload_id=upload.upload_id, part_number=number, body=body)
        )
        check(result.hash_crc64 == crc64(body), f"UploadPart {number} CRC {result.hash_crc64}")
        uploaded.append(oss.UploadPart(part_number=number, etag=result.etag))

    listed = client.list_parts(oss.ListPartsRequest(bucket=bucket, key=key, upload_id=upload.upload_id))
    check([part.part_number for part in listed.parts] == [1, 2, 3], "ListParts part numbers")

    complete = client.complete_multipart_upload(
        oss.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=upload.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=uploaded),
        )
    )
    check(complete.hash_crc64 == crc64(whole), f"Complete CRC {complete.hash_crc64} differs from {crc64(whole)}")
    check(complete.key == key, f"Complete key {complete.key}")

    ranged = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key, range_header="bytes=1000-1999"))
    check(ranged.body.read() == whole[1000:2000], "ranged GetObject body")
    get = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    check(get.body.read() == whole, "GetObject body differs from the parts")
    return complete.hash_crc64


def replace_metadata_in_place(client: oss.Client, bucket: str, key: str, crc: str) -> None:
    head = client.head_object(oss.HeadObjectRequest(bucket=bucket, key=key))
    copied = client.copy_object(
        oss.CopyObjectRequest(
            bucket=bucket,
            key=key,
            source_bucket=bucket,
            source_key=key,
            if_match=head.etag,
            metadata_directive="REPLACE",
            metadata={"crc64ecma": crc},
        )
    )
    check(copied.hash_crc64 == crc, f"CopyObject CRC {copied.hash_crc64} differs from {crc}")
    after = client.head_object(oss.HeadObjectRequest(bucket=bucket, key=key))
    check(after.metadata.get("crc64ecma") == crc, f"metadata after CopyObject {after.metadata}")
    check(after.etag == head.etag, f"ETag changed from {head.etag} to {after.etag}")


def wrong_secret_is_rejected(args: argparse.Namespace) -> None:
    client = make_client(args, args.access_key_secret + "-wrong")
    try:
        client.put_object(oss.PutObjectRequest(bucket=args.bucket, key=f"{args.prefix}rejected", body=b"x"))
    except oss.exceptions.OperationError as error:
        cause = error.unwrap()
        code = getattr(cause, "code", None)
        check(code == "SignatureDoesNotMatch", f"wrong secret failed with {code}: {cause}")
        return
    raise SystemExit("fidelity check failed: a wrong secret was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port of the fake OSS on 127.0.0.1")
    parser.add_argument("--region", required=True, help="OSS region, such as cn-hangzhou")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--access-key-id", required=True)
    parser.add_argument("--access-key-secret", required=True)
    parser.add_argument("--prefix", default="fidelity/", help="key prefix for the objects written")
    args = parser.parse_args()

    os.environ["NO_PROXY"] = "*"
    route_names_to_loopback(f"oss-{args.region}.aliyuncs.com")
    client = make_client(args, args.access_key_secret)
    written = {
        f"{args.prefix}put.bin": put_and_read(client, args.bucket, f"{args.prefix}put.bin"),
        f"{args.prefix}multipart.bin": multipart_and_read(client, args.bucket, f"{args.prefix}multipart.bin"),
    }
    multipart_key = f"{args.prefix}multipart.bin"
    replace_metadata_in_place(client, args.bucket, multipart_key, written[multipart_key])
    wrong_secret_is_rejected(args)
    json.dump(written, sys.stdout)
    print()


if __name__ == "__main__":
    main()
