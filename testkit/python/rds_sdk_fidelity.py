"""List backups from the fake RDS OpenAPI server with the official Aliyun Python SDK.

The SDK (alibabacloud-rds20140815 with alibabacloud-tea-openapi) signs with ACS3-HMAC-SHA256 and
parses the responses, so a clean run shows that the fake checks signatures and shapes its
responses the way the real service does. Prints one backup id per line, in listing order.

Settings come from the environment so that the secret never appears in a process list:
FAKE_RDS_ENDPOINT (host:port), FAKE_RDS_ACCESS_KEY_ID, FAKE_RDS_ACCESS_KEY_SECRET,
FAKE_RDS_INSTANCE_ID, FAKE_RDS_START_TIME and FAKE_RDS_END_TIME (yyyy-MM-ddTHH:mmZ).
"""

import os
import sys

from alibabacloud_rds20140815.client import Client
from alibabacloud_rds20140815 import models
from alibabacloud_tea_openapi import models as openapi_models

PAGE_SIZE = 30


def required(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"missing environment variable {name}")
    return value


def main():
    config = openapi_models.Config(
        access_key_id=required("FAKE_RDS_ACCESS_KEY_ID"),
        access_key_secret=required("FAKE_RDS_ACCESS_KEY_SECRET"),
        endpoint=required("FAKE_RDS_ENDPOINT"),
        protocol="http",
        region_id="cn-hangzhou",
    )
    client = Client(config)
    instance_id = required("FAKE_RDS_INSTANCE_ID")

    page_number = 1
    listed = 0
    while True:
        request = models.DescribeBackupsRequest(
            dbinstance_id=instance_id,
            start_time=required("FAKE_RDS_START_TIME"),
            end_time=required("FAKE_RDS_END_TIME"),
            page_size=PAGE_SIZE,
            page_number=page_number,
        )
        body = client.describe_backups(request).body
        backups = body.items.backup if body.items and body.items.backup else []
        for backup in backups:
            print(backup.backup_id)
        listed += len(backups)
        if len(backups) < PAGE_SIZE or listed >= int(body.total_record_count):
            return
        page_number += 1


if __name__ == "__main__":
    main()
