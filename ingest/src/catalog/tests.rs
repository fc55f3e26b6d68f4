//! Unit tests of the application catalog.

use super::*;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn builtin_parses_and_covers_all_categories() {
    let c = Catalog::from_toml_str(BUILTIN_NAME, BUILTIN_TOML).expect("builtin parses");
    assert!(c.len() >= 300, "only {} apps", c.len());
    for cat in &Category::ALL[..6] {
        let n = c.entries().iter().filter(|e| e.category == *cat).count();
        assert!(n >= 10, "category {cat} has only {n} apps");
    }
    // cached instance is the same content
    assert_eq!(Catalog::builtin().len(), c.len());
    assert!(std::ptr::eq(Catalog::builtin_ref(), Catalog::builtin_ref()));
}

#[test]
fn category_round_trips() {
    for c in Category::ALL {
        assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
        assert_eq!(c.to_string(), c.as_str());
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, format!("\"{}\"", c.as_str()));
        assert_eq!(serde_json::from_str::<Category>(&j).unwrap(), c);
    }
    assert_eq!("VIDEO".parse::<Category>().unwrap(), Category::Video);
    assert!("music".parse::<Category>().is_err());
}

#[test]
fn suffix_matching_at_label_boundaries() {
    let c = Catalog::builtin();
    let m = c.match_name("www.youtube.com").unwrap();
    assert_eq!(m.app, "YouTube");
    assert_eq!(m.category, Category::Video);
    assert!(m.required_mbps.is_some());
    assert_eq!(c.match_name("youtube.com").unwrap().app, "YouTube");
    assert!(c.match_name("notyoutube.com").is_none());
    assert!(c.match_name("youtube.com.evil.example").is_none());
    assert!(c.match_name("com").is_none());
    assert!(c.match_name("").is_none());
    assert!(c.match_name(".").is_none());
    // case-insensitive, trailing dot, HTTP host with port
    assert_eq!(c.match_name("WWW.NetFlix.COM.").unwrap().app, "NetFlix");
    assert_eq!(c.match_name("www.netflix.com:443").unwrap().app, "NetFlix");
    // longest suffix wins
    assert_eq!(
        c.match_name("upload.youtube.com").unwrap().app,
        "YouTubeUpload"
    );
    assert_eq!(c.match_name("meet.google.com").unwrap().app, "GoogleMeet");
    assert_eq!(c.match_name("www.google.com").unwrap().app, "Google");
    assert_eq!(
        c.match_name("teams.microsoft.com").unwrap().category,
        Category::Live
    );
    // IP literals are not names
    assert!(c.match_name("23.246.11.141").is_none());
    assert!(c.match_name("[2a03:2880::1]:443").is_none());
    assert!(c.match_name("2a03:2880::1").is_none());
    // very long names do not panic
    let long = "a.".repeat(200) + "youtube.com";
    assert!(c.match_name(&long).is_none());
}

#[test]
fn sni_and_dns_only_suffixes() {
    let toml = r#"
[[app]]
app = "X"
category = "web"
sni_suffixes = ["x.example"]
dns_suffixes = ["x-cdn.example"]
"#;
    let c = Catalog::from_toml_str("t.toml", toml).unwrap();
    assert_eq!(c.match_sni("a.x.example").unwrap().app, "X");
    assert_eq!(c.match_dns("a.x.example").unwrap().app, "X");
    assert!(c.match_sni("a.x-cdn.example").is_none());
    assert_eq!(c.match_dns("a.x-cdn.example").unwrap().app, "X");
    assert_eq!(c.match_name("a.x-cdn.example").unwrap().app, "X");
}

#[test]
fn chinese_services() {
    let c = Catalog::builtin();
    for (name, app, cat) in [
        ("www.iqiyi.com", "iQIYI", Category::Video),
        ("v.youku.com", "Youku", Category::Video),
        ("v.qq.com", "Tencentvideo", Category::Video),
        ("www.bilibili.com", "Bilibili", Category::Video),
        (
            "upos-sz-mirrorcos.bilivideo.com",
            "Bilibili",
            Category::Video,
        ),
        ("www.douyin.com", "Douyin", Category::Video),
        ("www.huya.com", "Huya", Category::Live),
        ("www.douyu.com", "Douyu", Category::Live),
        ("short.weixin.qq.com", "WeChat", Category::Web),
        ("www.qq.com", "QQ", Category::Web),
        ("weibo.com", "SinaWeibo", Category::Web),
        ("www.baidu.com", "Baidu", Category::Web),
        ("www.taobao.com", "Taobao", Category::Web),
        ("hk4e-api.mihoyo.com", "GenshinImpact", Category::Gaming),
        ("pvp.qq.com", "TencentGames", Category::Gaming),
        (
            "appgallery.cloud.huawei.com",
            "HuaweiAppGallery",
            Category::Download,
        ),
    ] {
        let m = c
            .match_name(name)
            .unwrap_or_else(|| panic!("{name} unmatched"));
        assert_eq!((m.app, m.category), (app, cat), "{name}");
    }
}

#[test]
fn ip_prefix_matching() {
    let c = Catalog::builtin();
    assert_eq!(c.match_ip(ip("142.250.74.46")).unwrap().app, "Google");
    assert_eq!(c.match_ip(ip("157.240.1.35")).unwrap().app, "Facebook");
    assert_eq!(c.match_ip(ip("173.252.97.2")).unwrap().app, "Facebook");
    assert_eq!(c.match_ip(ip("31.13.68.84")).unwrap().app, "Facebook");
    assert_eq!(c.match_ip(ip("149.154.167.51")).unwrap().app, "Telegram");
    assert_eq!(c.match_ip(ip("91.108.12.1")).unwrap().app, "Telegram");
    assert_eq!(c.match_ip(ip("23.246.11.141")).unwrap().app, "NetFlix");
    assert_eq!(
        c.match_ip(ip("2a03:2880:1010:6f03:face:b00c:0:2"))
            .unwrap()
            .app,
        "Facebook"
    );
    assert_eq!(
        c.match_ip(ip("2001:4860:4860::8888")).unwrap().app,
        "Google"
    );
    assert_eq!(
        c.match_ip(ip("2001:b28:f23d:f001::a")).unwrap().app,
        "Telegram"
    );
    // IPv4-mapped IPv6
    let mapped = IpAddr::V6(Ipv4Addr::new(157, 240, 1, 35).to_ipv6_mapped());
    assert_eq!(c.match_ip(mapped).unwrap().app, "Facebook");
    assert!(c.match_ip(ip("192.168.1.1")).is_none());
    assert!(c.match_ip(ip("10.0.0.1")).is_none());
    assert!(c.match_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)).is_none());
    assert!(c.match_ip(ip("0.0.0.0")).is_none());
    assert!(c.match_ip(ip("255.255.255.255")).is_none());
}

#[test]
fn longest_prefix_wins() {
    let toml = r#"
[[app]]
app = "Outer"
category = "web"
server_prefixes = ["10.0.0.0/8", "2001:db8::/32"]

[[app]]
app = "Inner"
category = "video"
server_prefixes = ["10.1.0.0/16", "2001:db8:1::/48", "10.1.2.3"]

[[app]]
app = "Host"
category = "gaming"
server_prefixes = ["10.1.2.4/32"]
"#;
    let c = Catalog::from_toml_str("t.toml", toml).unwrap();
    assert_eq!(c.match_ip(ip("10.2.0.1")).unwrap().app, "Outer");
    assert_eq!(c.match_ip(ip("10.1.0.1")).unwrap().app, "Inner");
    assert_eq!(c.match_ip(ip("10.1.2.4")).unwrap().app, "Host");
    assert_eq!(c.match_ip(ip("10.1.2.5")).unwrap().app, "Inner");
    assert_eq!(c.match_ip(ip("10.255.255.255")).unwrap().app, "Outer");
    assert!(c.match_ip(ip("11.0.0.0")).is_none());
    assert_eq!(c.match_ip(ip("2001:db8:1::5")).unwrap().app, "Inner");
    assert_eq!(c.match_ip(ip("2001:db8:2::5")).unwrap().app, "Outer");
    assert!(c.match_ip(ip("2001:db9::1")).is_none());
}

#[test]
fn port_matching_and_classify_order() {
    let c = Catalog::builtin();
    assert_eq!(c.match_port(17, 3478).unwrap().app, "STUN");
    assert_eq!(c.match_port(17, 3478).unwrap().category, Category::Voice);
    assert_eq!(c.match_port(6, 27020).unwrap().app, "Steam");
    assert_eq!(c.match_port(17, 8801).unwrap().app, "Zoom");
    assert_eq!(c.match_port(17, 22101).unwrap().app, "GenshinImpact");
    assert!(c.match_port(6, 3478).is_some());
    assert!(c.match_port(1, 3478).is_none());
    assert!(c.match_port(6, 443).is_none());
    // name beats IP beats port
    let fb = ip("157.240.1.35");
    assert_eq!(
        c.classify(Some("www.netflix.com"), fb, 17, 3478)
            .unwrap()
            .app,
        "NetFlix"
    );
    assert_eq!(
        c.classify(Some("unknown.example"), fb, 17, 3478)
            .unwrap()
            .app,
        "Facebook"
    );
    assert_eq!(
        c.classify(None, ip("192.0.2.1"), 17, 3478).unwrap().app,
        "STUN"
    );
    assert!(c.classify(None, ip("192.0.2.1"), 6, 443).is_none());
}

#[test]
fn user_file_overrides_and_extends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("apps.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    write!(
        f,
        r#"
[[app]]
app = "YouTube"
category = "live"
required_mbps = 12.5
sni_suffixes = ["youtube.com"]

[[app]]
app = "OperatorTV"
category = "video"
required_mbps = 8
sni_suffixes = ["iptv.operator.example"]
server_prefixes = ["198.51.100.0/24", "2001:db8:100::/48"]
ports = ["udp:5000-5010"]

[[app]]
app = "MyFacebookCache"
category = "video"
server_prefixes = ["157.240.1.0/24"]
"#
    )
    .unwrap();
    drop(f);
    let c = Catalog::load_merged(Some(&path)).unwrap();
    let b = Catalog::builtin();
    assert_eq!(c.len(), b.len() + 2);
    let yt = c.match_name("www.youtube.com").unwrap();
    assert_eq!(
        (yt.app, yt.category, yt.required_mbps),
        ("YouTube", Category::Live, Some(12.5))
    );
    // the overriding entry replaced the built-in one entirely
    assert!(c.match_name("r1---sn-abc.googlevideo.com").is_none());
    assert_eq!(
        c.match_name("a.iptv.operator.example").unwrap().app,
        "OperatorTV"
    );
    assert_eq!(c.match_ip(ip("198.51.100.7")).unwrap().app, "OperatorTV");
    assert_eq!(c.match_ip(ip("2001:db8:100::1")).unwrap().app, "OperatorTV");
    assert_eq!(c.match_port(17, 5005).unwrap().app, "OperatorTV");
    assert_eq!(
        c.match_ip(ip("157.240.1.35")).unwrap().app,
        "MyFacebookCache"
    );
    assert_eq!(c.match_ip(ip("157.240.2.35")).unwrap().app, "Facebook");
    assert_eq!(c.app("operatortv").unwrap().required_mbps, Some(8.0));
    // built-in untouched
    assert_eq!(
        b.match_name("www.youtube.com").unwrap().category,
        Category::Video
    );
    // no user file = builtin
    assert_eq!(Catalog::load_merged(None).unwrap().len(), b.len());
}

fn err_of(toml: &str) -> String {
    Catalog::from_toml_str("user.toml", toml)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_files_name_file_and_key() {
    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nsni_sufixes = [\"a.com\"]\n");
    assert!(e.starts_with("user.toml:"), "{e}");
    assert!(e.contains("sni_sufixes"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"vidoe\"\n");
    assert!(e.contains("user.toml") && e.contains("vidoe"), "{e}");

    let e =
        err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nserver_prefixes = [\"10.0.0.1/8\"]\n");
    assert!(
        e.contains("user.toml") && e.contains("server_prefixes") && e.contains("\"A\""),
        "{e}"
    );

    let e =
        err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nserver_prefixes = [\"10.0.0.0/33\"]\n");
    assert!(e.contains("server_prefixes"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nports = [\"tcp:80-20\"]\n");
    assert!(e.contains("ports") && e.contains("tcp:80-20"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nports = [\"icmp:1\"]\n");
    assert!(e.contains("ports"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nsni_suffixes = [\"a..com\"]\n");
    assert!(e.contains("sni_suffixes") && e.contains("a..com"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nsni_suffixes = [\"1.2.3.4\"]\n");
    assert!(e.contains("sni_suffixes"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"video\"\nrequired_mbps = -1\n");
    assert!(e.contains("required_mbps"), "{e}");

    let e = err_of(
        "[[app]]\napp = \"A\"\ncategory = \"web\"\n[[app]]\napp = \"A\"\ncategory = \"web\"\n",
    );
    assert!(e.contains("app #2") && e.contains("duplicate"), "{e}");

    let e = err_of("[[app]]\napp = \"A\"\ncategory = \"web\"\nsni_suffixes = [\"a.com\"]\n[[app]]\napp = \"B\"\ncategory = \"web\"\nsni_suffixes = [\"A.com.\"]\n");
    assert!(
        e.contains("app #2") && e.contains("a.com") && e.contains("#1"),
        "{e}"
    );

    let e = err_of("[[app]]\ncategory = \"web\"\n");
    assert!(e.contains("app"), "{e}");

    let e = err_of("this is not toml");
    assert!(e.starts_with("user.toml:"), "{e}");

    let e = Catalog::load_merged(Some(Path::new("/nonexistent/apps.toml")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/apps.toml"), "{e}");
}

#[test]
fn suffix_normalisation() {
    let toml = "[[app]]\napp = \"A\"\ncategory = \"web\"\nsni_suffixes = [\"*.Example.COM\", \".b.example.\"]\n";
    let c = Catalog::from_toml_str("t.toml", toml).unwrap();
    assert_eq!(c.match_name("x.example.com").unwrap().app, "A");
    assert_eq!(c.match_name("b.example").unwrap().app, "A");
    assert_eq!(
        c.entries()[0].sni_suffixes,
        vec!["example.com", "b.example"]
    );
}

#[test]
fn l7_defaults() {
    assert_eq!(category_of_l7("RTP"), Some(Category::Voice));
    assert_eq!(category_of_l7("sip"), Some(Category::Voice));
    assert_eq!(category_of_l7("DNS"), Some(Category::Web));
    assert_eq!(category_of_l7("TLS"), Some(Category::Web));
    assert_eq!(category_of_l7("BitTorrent"), Some(Category::Download));
    assert_eq!(category_of_l7("RTMP"), Some(Category::Live));
    assert_eq!(category_of_l7("WhatsAppCall"), Some(Category::Voice));
    assert_eq!(category_of_l7("MDNS"), Some(Category::Other));
    // falls back to catalog app names
    assert_eq!(category_of_l7("NetFlix"), Some(Category::Video));
    assert_eq!(category_of_l7("GenshinImpact"), Some(Category::Gaming));
    assert_eq!(category_of_l7("Telegram"), Some(Category::Web));
    assert_eq!(category_of_l7("no-such-proto"), None);
}

/// nDPI's app names for the SNI/Host/DNS names in the conformance expectations.
#[test]
fn matches_ndpi_app_names_in_conformance_traces() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/expected/ndpi_flows.tsv"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipping: {path} not found");
        return;
    };
    let c = Catalog::builtin();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (c_l7, c_app, c_name) = (col("l7_proto"), col("app"), col("sni_or_host"));
    let (mut total, mut ok) = (0, 0);
    let mut misses = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let (l7, app, name) = (f[c_l7], f[c_app], f[c_name]);
        // rows where nDPI names an application (not just the protocol) from a name
        if name.is_empty() || app == l7 || app == "Unknown" || l7 == "NetBIOS" {
            continue;
        }
        total += 1;
        match c.match_name(name) {
            Some(m) if m.app == app => ok += 1,
            other => misses.push(format!(
                "{name}: want {app}, got {:?}",
                other.map(|m| m.app)
            )),
        }
    }
    // rows where nDPI reports only the protocol should not be given a catalog app, except
    // where the name clearly belongs to one (checked loosely: count only)
    eprintln!("nDPI app names matched: {ok}/{total}; misses: {misses:#?}");
    assert!(total > 50, "expected many named rows, got {total}");
    assert!(
        ok * 100 >= total * 95,
        "only {ok}/{total} matched: {misses:#?}"
    );
}

/// Names for which nDPI reports only the protocol should mostly stay unnamed by the catalog
/// too (generic CDN names, unknown sites).
#[test]
fn protocol_only_names_in_conformance_traces_stay_unnamed() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/expected/ndpi_flows.tsv"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipping: {path} not found");
        return;
    };
    let c = Catalog::builtin();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (c_l7, c_app, c_name) = (col("l7_proto"), col("app"), col("sni_or_host"));
    let mut named = Vec::new();
    let mut total = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let (l7, app, name) = (f[c_l7], f[c_app], f[c_name]);
        if name.is_empty() || app != l7 {
            continue;
        }
        total += 1;
        if let Some(m) = c.match_name(name) {
            named.push(format!("{name} ({l7}) -> {}", m.app));
        }
    }
    eprintln!(
        "protocol-only rows given an app: {}/{total}: {named:#?}",
        named.len()
    );
    assert!(named.len() * 10 <= total, "{named:#?}");
}
