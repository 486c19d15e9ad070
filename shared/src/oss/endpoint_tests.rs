use super::*;

const OSS: EndpointOptions = EndpointOptions {
    custom_domain: false,
    allow_http: false,
};
const CNAME: EndpointOptions = EndpointOptions {
    custom_domain: true,
    allow_http: false,
};
const LOCAL: EndpointOptions = EndpointOptions {
    custom_domain: false,
    allow_http: true,
};

/// A check that an error is the expected variant.
type ErrorCheck = fn(&EndpointError) -> bool;

fn no_query() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn parses_every_endpoint_kind() {
    let cases = [
        (
            "oss-cn-hangzhou.aliyuncs.com",
            EndpointKind::Standard {
                region: "cn-hangzhou".into(),
            },
        ),
        (
            "https://oss-cn-hangzhou.aliyuncs.com",
            EndpointKind::Standard {
                region: "cn-hangzhou".into(),
            },
        ),
        (
            "https://oss-ap-southeast-1.aliyuncs.com/",
            EndpointKind::Standard {
                region: "ap-southeast-1".into(),
            },
        ),
        (
            "OSS-CN-Shanghai.Aliyuncs.com",
            EndpointKind::Standard {
                region: "cn-shanghai".into(),
            },
        ),
        (
            "oss-cn-beijing-internal.aliyuncs.com",
            EndpointKind::Internal {
                region: "cn-beijing".into(),
            },
        ),
        ("oss-accelerate.aliyuncs.com", EndpointKind::Accelerate),
        (
            "https://oss-accelerate-overseas.aliyuncs.com",
            EndpointKind::AccelerateOverseas,
        ),
    ];
    for (value, kind) in cases {
        let endpoint =
            OssEndpoint::parse(value, OSS).unwrap_or_else(|error| panic!("{value}: {error}"));
        assert_eq!(endpoint.kind(), &kind, "{value}");
        assert_eq!(endpoint.scheme(), Scheme::Https, "{value}");
    }
}

#[test]
fn parses_custom_domain_in_custom_domain_mode() {
    let endpoint = OssEndpoint::parse("https://backups.example.com", CNAME).unwrap();
    assert_eq!(endpoint.kind(), &EndpointKind::CustomDomain);
    assert_eq!(endpoint.host(), "backups.example.com");
    assert_eq!(endpoint.region(), None);
}

#[test]
fn rejects_invalid_endpoints_naming_the_value() {
    let cases: [(&str, EndpointOptions, ErrorCheck); 14] = [
        ("", OSS, |e| matches!(e, EndpointError::Empty)),
        ("   ", OSS, |e| matches!(e, EndpointError::Empty)),
        ("http://oss-cn-hangzhou.aliyuncs.com", OSS, |e| {
            matches!(e, EndpointError::HttpNotAllowed { .. })
        }),
        ("ftp://oss-cn-hangzhou.aliyuncs.com", OSS, |e| {
            matches!(e, EndpointError::UnsupportedScheme { .. })
        }),
        ("https://oss-cn-hangzhou.aliyuncs.com/mybucket", OSS, |e| {
            matches!(e, EndpointError::ExtraParts { part: "a path", .. })
        }),
        ("https://oss-cn-hangzhou.aliyuncs.com/?acl", OSS, |e| {
            matches!(
                e,
                EndpointError::ExtraParts {
                    part: "a query",
                    ..
                }
            )
        }),
        ("https://oss-cn-hangzhou.aliyuncs.com?", OSS, |e| {
            matches!(
                e,
                EndpointError::ExtraParts {
                    part: "a query",
                    ..
                }
            )
        }),
        ("https://oss-cn-hangzhou.aliyuncs.com#top", OSS, |e| {
            matches!(
                e,
                EndpointError::ExtraParts {
                    part: "a fragment",
                    ..
                }
            )
        }),
        ("https://user:pass@oss-cn-hangzhou.aliyuncs.com", OSS, |e| {
            matches!(
                e,
                EndpointError::ExtraParts {
                    part: "user info",
                    ..
                }
            )
        }),
        ("mybucket.oss-cn-hangzhou.aliyuncs.com", OSS, |e| {
            matches!(e, EndpointError::ContainsBucket { bucket, endpoint, .. }
                if bucket == "mybucket" && endpoint == "oss-cn-hangzhou.aliyuncs.com")
        }),
        ("backups.example.com", OSS, |e| {
            matches!(e, EndpointError::NotOssEndpoint { .. })
        }),
        ("ecs.aliyuncs.com", OSS, |e| {
            matches!(e, EndpointError::NotOssEndpoint { .. })
        }),
        ("oss-.aliyuncs.com", OSS, |e| {
            matches!(e, EndpointError::NotOssEndpoint { .. })
        }),
        ("oss-cn-hangzhou.aliyuncs.com", CNAME, |e| {
            matches!(e, EndpointError::AliyunHostAsCustomDomain { .. })
        }),
    ];
    for (value, options, expected) in cases {
        let error = OssEndpoint::parse(value, options).expect_err(value);
        assert!(expected(&error), "{value}: unexpected error {error:?}");
        if !value.trim().is_empty() {
            assert!(
                error.to_string().contains(value.trim()),
                "{value}: message does not name it: {error}"
            );
        }
    }
}

#[test]
fn accepts_http_only_when_allowed() {
    let endpoint = OssEndpoint::parse("http://oss-cn-hangzhou.aliyuncs.com:8080", LOCAL).unwrap();
    assert_eq!(endpoint.scheme(), Scheme::Http);
    assert_eq!(
        endpoint.to_string(),
        "http://oss-cn-hangzhou.aliyuncs.com:8080"
    );
}

#[test]
fn region_check_compares_standard_and_internal_regions() {
    let standard = OssEndpoint::parse("oss-cn-hangzhou.aliyuncs.com", OSS).unwrap();
    assert_eq!(standard.check_region("cn-hangzhou"), Ok(()));
    let error = standard.check_region("cn-shanghai").unwrap_err();
    assert!(matches!(error, EndpointError::RegionMismatch { .. }));
    assert!(error.to_string().contains("cn-shanghai"));
    assert!(error.to_string().contains("cn-hangzhou"));

    let internal = OssEndpoint::parse("oss-cn-hangzhou-internal.aliyuncs.com", OSS).unwrap();
    assert!(internal.check_region("cn-beijing").is_err());

    let accelerate = OssEndpoint::parse("oss-accelerate.aliyuncs.com", OSS).unwrap();
    assert_eq!(accelerate.check_region("cn-beijing"), Ok(()));
}

#[test]
fn object_urls_are_virtual_hosted_for_every_aliyun_kind() {
    let cases = [
        (
            "oss-cn-hangzhou.aliyuncs.com",
            "https://mybucket.oss-cn-hangzhou.aliyuncs.com/mysql/a.gz",
        ),
        (
            "oss-cn-hangzhou-internal.aliyuncs.com",
            "https://mybucket.oss-cn-hangzhou-internal.aliyuncs.com/mysql/a.gz",
        ),
        (
            "oss-accelerate.aliyuncs.com",
            "https://mybucket.oss-accelerate.aliyuncs.com/mysql/a.gz",
        ),
        (
            "oss-accelerate-overseas.aliyuncs.com",
            "https://mybucket.oss-accelerate-overseas.aliyuncs.com/mysql/a.gz",
        ),
    ];
    for (value, expected) in cases {
        let endpoint = OssEndpoint::parse(value, OSS).unwrap();
        let url = endpoint
            .object_url("mybucket", "mysql/a.gz", &no_query())
            .unwrap();
        assert_eq!(url.as_str(), expected);
    }
}

#[test]
fn object_url_in_custom_domain_mode_uses_the_domain_alone() {
    let endpoint = OssEndpoint::parse("backups.example.com", CNAME).unwrap();
    let url = endpoint
        .object_url("mybucket", "mysql/a.gz", &no_query())
        .unwrap();
    assert_eq!(url.as_str(), "https://backups.example.com/mysql/a.gz");
}

#[test]
fn object_url_encodes_key_and_query() {
    let endpoint = OssEndpoint::parse("http://oss-cn-hangzhou.aliyuncs.com:9000", LOCAL).unwrap();
    let query = vec![
        ("partNumber".to_string(), "1".to_string()),
        ("uploadId".to_string(), "a+b/c".to_string()),
    ];
    let url = endpoint
        .object_url("b1", "mysql/db.t$1/a b+c/备份.gz", &query)
        .unwrap();
    assert_eq!(
        url.as_str(),
        "http://b1.oss-cn-hangzhou.aliyuncs.com:9000/mysql/db.t%241/a%20b%2Bc/%E5%A4%87%E4%BB%BD.gz?partNumber=1&uploadId=a%2Bb%2Fc"
    );
}

#[test]
fn bucket_url_writes_bare_query_names() {
    let endpoint = OssEndpoint::parse("oss-cn-hangzhou.aliyuncs.com", OSS).unwrap();
    let query = vec![
        ("uploads".to_string(), String::new()),
        ("prefix".to_string(), "mysql/".to_string()),
    ];
    let url = endpoint.bucket_url("b1", &query).unwrap();
    assert_eq!(
        url.as_str(),
        "https://b1.oss-cn-hangzhou.aliyuncs.com/?uploads&prefix=mysql%2F"
    );
}
