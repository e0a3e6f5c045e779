//! Luxembourg (Smarty) meters: fixture telegrams encrypted here as the meter does (AES-128-GCM,
//! 12-byte tag, nonce = system title ‖ frame counter), found in a noisy stream, decrypted, and
//! read by the source through a pseudo-terminal; wrong keys and damaged frames are skipped.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes128;
use aes_gcm::{AesGcm, KeyInit, Nonce};
use serialport::{SerialPort, TTYPort};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;
use twc_core::plugin::{EmsSource, ErrorKind, PluginConfig};
use twc_ems_dsmr::smarty::{DEFAULT_AUTH_KEY, FrameSplitter, Keys, decrypt, parse_key};
use twc_ems_dsmr::{TelegramError, parse, to_reading};
use twc_testkit::{assert_w, read_fixture};

fn fx(name: &str) -> Vec<u8> {
    read_fixture(&format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

const KEY_HEX: &str = "000102030405060708090A0B0C0D0E0F";
const ADN9: &str = "p1_telegram_ADN9_combined_registers.txt";

fn keys() -> Keys {
    Keys {
        decryption: parse_key(KEY_HEX).unwrap(),
        authentication: DEFAULT_AUTH_KEY,
    }
}

/// A frame as a Smarty meter sends it.
fn encrypt(plain: &[u8], keys: &Keys, counter: u32) -> Vec<u8> {
    let title = *b"SAG\x05\x00\x01\x02\x03";
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&title);
    nonce[8..].copy_from_slice(&counter.to_be_bytes());
    let mut aad = vec![0x30];
    aad.extend_from_slice(&keys.authentication);
    let mut body = plain.to_vec();
    let tag = AesGcm::<Aes128, U12, U12>::new(&keys.decryption.into())
        .encrypt_in_place_detached(Nonce::<U12>::from_slice(&nonce), &aad, &mut body)
        .unwrap();
    let len = (1 + 4 + body.len() + 12) as u16;
    let mut f = vec![0xDB, 8];
    f.extend_from_slice(&title);
    f.push(0x82);
    f.extend_from_slice(&len.to_be_bytes());
    f.push(0x30);
    f.extend_from_slice(&counter.to_be_bytes());
    f.extend_from_slice(&body);
    f.extend_from_slice(&tag);
    f
}

#[test]
fn keys_are_32_hex_digits() {
    assert_eq!(parse_key(KEY_HEX).unwrap()[15], 0x0F);
    assert_eq!(
        parse_key("00112233445566778899aabbccddeeff"),
        Some(DEFAULT_AUTH_KEY)
    );
    for bad in [
        "",
        "0011",
        "00112233445566778899AABBCCDDEEFG",
        "é0112233445566778899AABBCCDDEEF",
    ] {
        assert_eq!(parse_key(bad), None, "{bad}");
    }
    assert_eq!(format!("{:?}", keys()), "Keys(***)");
}

#[test]
fn a_frame_decrypts_to_the_telegram() {
    let plain = fx(ADN9);
    let frame = encrypt(&plain, &keys(), 7);
    assert_eq!(decrypt(&frame, &keys()).unwrap(), plain);
    let r = to_reading(&parse(&decrypt(&frame, &keys()).unwrap()).unwrap()).unwrap();
    assert_w("grid_w", r.grid_w, 4251.0);
}

#[test]
fn wrong_keys_and_damage_are_refused() {
    let frame = encrypt(&fx(ADN9), &keys(), 1);
    let mut wrong = keys();
    wrong.decryption[0] ^= 1;
    let mut wrong_auth = keys();
    wrong_auth.authentication[15] ^= 1;
    let mut damaged = frame.clone();
    damaged[100] ^= 0x20;
    let mut cut = frame.clone();
    cut.truncate(frame.len() - 1);
    for (what, f, k) in [
        ("wrong key", &frame, &wrong),
        ("wrong authentication key", &frame, &wrong_auth),
        ("damaged", &damaged, &keys()),
        ("cut", &cut, &keys()),
        ("plain text", &fx(ADN9), &keys()),
    ] {
        assert!(
            matches!(decrypt(f, k), Err(TelegramError::Undecryptable(_))),
            "{what}"
        );
    }
}

#[test]
fn the_frame_splitter_finds_frames_in_noise() {
    let a = encrypt(&fx(ADN9), &keys(), 1);
    let b = encrypt(&fx("p1_telegram_dsmr50_ISK5_2M550T.txt"), &keys(), 2);
    let mut stream = b"\xDB\x08 not a header at all".to_vec();
    stream.extend_from_slice(&a[..40]); // a frame begun before the port opened…
    let mut s = FrameSplitter::new();
    assert!(s.push(&stream).is_empty());
    s.reset(); // …dropped when it reopened
    let mut rest = a.clone();
    rest.extend_from_slice(b"\x00\x01");
    rest.extend_from_slice(&b);
    let mut got = Vec::new();
    for chunk in rest.chunks(7) {
        got.extend(s.push(chunk));
    }
    assert_eq!(got, vec![a, b]);
    assert!(s.dropped_bytes() >= 40);
}

#[tokio::test]
async fn a_luxembourg_meter_through_a_pty() {
    let (mut far, _near) = TTYPort::pair().expect("pty pair");
    let path = _near.name().unwrap();
    let cfg = |key: &str| {
        PluginConfig::from_toml(
            "ems.dsmr",
            &format!("port = \"{path}\"\ndecryption_key = \"{key}\""),
        )
        .unwrap()
    };
    let src = twc_ems_dsmr::build_source(&cfg(KEY_HEX)).unwrap();
    src.read().await.unwrap_err();
    far.write_all(b"noise").unwrap();
    far.write_all(&encrypt(&fx(ADN9), &keys(), 9)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    let r = loop {
        if let Ok(r) = src.read().await {
            break r;
        }
        assert!(Instant::now() < until, "no reading: {:?}", src.read().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_w("grid_w", r.grid_w, 4251.0);
    // A frame under another key: counted and skipped, the reading stays.
    let mut other = keys();
    other.decryption = [9; 16];
    far.write_all(&encrypt(&fx(ADN9), &other, 10)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while src.stats().undecryptable == 0 {
        assert!(Instant::now() < until, "the frame was not refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(src.read().await.unwrap().grid_w, Some(4251.0));
    drop(src);

    // Configured with a wrong key: the error says so, no reading.
    let src = twc_ems_dsmr::build_source(&cfg("0F0E0D0C0B0A09080706050403020100")).unwrap();
    src.read().await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(300)).await;
    far.write_all(&encrypt(&fx(ADN9), &keys(), 11)).unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let e = src.read().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient);
        if e.chain().contains("1 frames not decrypted") {
            break;
        }
        assert!(Instant::now() < until, "{}", e.chain());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn bad_keys_are_named() {
    for (body, named) in [
        ("decryption_key = \"00\"", "decryption_key"),
        (
            "decryption_key = \"000102030405060708090A0B0C0D0E0F\"\nauthentication_key = \"xyz\"",
            "authentication_key",
        ),
        (
            "authentication_key = \"00112233445566778899AABBCCDDEEFF\"",
            "decryption_key",
        ),
    ] {
        let cfg = PluginConfig::from_toml("ems.dsmr", &format!("port = \"/dev/ttyUSB0\"\n{body}"))
            .unwrap();
        let e = twc_ems_dsmr::build(&cfg).err().expect(body);
        assert!(e.to_string().contains(named), "{body}: {e}");
        assert!(
            !e.to_string().contains("0102030405"),
            "a key in an error: {e}"
        );
    }
}
