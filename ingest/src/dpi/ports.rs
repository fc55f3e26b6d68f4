//! Port-based guesses for flows the probes could not classify (nDPI "Match by port").

/// Guess for a flow of IP protocol `l4`; the server port is tried first.
pub(crate) fn guess(l4: u8, server_port: u16, client_port: u16) -> Option<&'static str> {
    let f = match l4 {
        6 => tcp,
        17 => udp,
        _ => return None,
    };
    f(server_port).or_else(|| f(client_port))
}

fn tcp(port: u16) -> Option<&'static str> {
    Some(match port {
        443 | 8443 => "TLS",
        80 | 8000 => "HTTP",
        8080 | 3128 => "HTTP_Proxy",
        53 => "DNS",
        21 => "FTP_CONTROL",
        22 => "SSH",
        23 => "Telnet",
        25 | 587 => "SMTP",
        110 => "POP3",
        143 => "IMAP",
        465 => "SMTPS",
        993 => "IMAPS",
        995 => "POP3S",
        853 => "DoT",
        179 => "BGP",
        389 => "LDAP",
        445 => "SMB",
        554 => "RTSP",
        1080 => "SOCKS",
        1723 => "PPTP",
        1883 => "MQTT",
        3306 => "MySQL",
        3389 => "RDP",
        5060 => "SIP",
        5061 => "SIPS",
        5222 => "Jabber",
        5228 => "TLS",
        5432 => "PostgreSQL",
        6379 => "Redis",
        8009 => "AJP",
        1935 => "RTMP",
        _ => return None,
    })
}

fn udp(port: u16) -> Option<&'static str> {
    Some(match port {
        443 => "QUIC",
        53 => "DNS",
        5353 => "MDNS",
        5355 => "LLMNR",
        137 | 138 => "NetBIOS",
        67 | 68 => "DHCP",
        546 | 547 => "DHCPV6",
        123 => "NTP",
        1900 => "SSDP",
        3478 | 19302 => "STUN",
        5060 => "SIP",
        3544 => "Teredo",
        4789 => "VXLAN",
        2152 => "GTP_U",
        2123 => "GTP_C",
        6081 => "Geneve",
        5072 => "AYIYA",
        500 | 4500 => "IPSec",
        1194 => "OpenVPN",
        51820 => "WireGuard",
        69 => "TFTP",
        161 | 162 => "SNMP",
        514 => "Syslog",
        1812 | 1813 => "RADIUS",
        17500 => "Dropbox",
        57621 => "Spotify",
        27036 => "Steam",
        _ => return None,
    })
}
