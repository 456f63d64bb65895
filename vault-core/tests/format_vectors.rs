//! The test vectors of docs/FORMAT.md, checked against the code.
//!
//! The document is read at test time and every ```` ```vectors ```` block in
//! it is parsed and checked twice: against an independent construction
//! written here from the document's text alone (HKDF and HMAC by hand over
//! `ring`'s HMAC, AEADs from RustCrypto, headers, AADs and encodings built
//! byte by byte), so the published values follow the published rules; and
//! against vault-core's public API, so the code follows them too.
//!
//! Vector syntax: `field: value` lines; a line starting with a space
//! continues the previous value (hex wrapped over several lines); a blank
//! line ends a vector. Byte strings are hex; fields named in [`TEXT`] are
//! UTF-8 text. Fields may repeat (`nonce` per block, `len` per length).
//!
//! `cargo test -p vault-core --test format_vectors -- --ignored --nocapture`
//! prints the vectors as the document carries them (their inputs are the
//! constants below), for regenerating the document after a deliberate
//! format change.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use ring::{digest, hmac};
use std::collections::{BTreeMap, BTreeSet};
use vault_core::{
    derive, long_entry_for, ContentFile, DirIdFile, EncodedName, Error, Geometry, Keyring,
    NameContext, SecretKey, Suite, VaultCipher, DIRID_LEN, HEADER_LEN, ROOT_PARENT,
};

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");

/// Fields whose values are text, not hex.
const TEXT: &[&str] = &[
    "kind",
    "label",
    "name",
    "plaintext",
    "target",
    "encoded",
    "entry",
    "side",
    "len",
    "reason",
];

// ---------------------------------------------------------------------------
// Parsing the document

#[derive(Debug)]
struct Vector {
    line: usize,
    fields: Vec<(String, String)>,
}

impl Vector {
    fn kind(&self) -> &str {
        self.get("kind")
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn get(&self, key: &str) -> &str {
        match self.all(key).as_slice() {
            [v] => v,
            [] => panic!("vector at line {}: no field `{key}`", self.line),
            _ => panic!("vector at line {}: field `{key}` repeated", self.line),
        }
    }

    fn has(&self, key: &str) -> bool {
        !self.all(key).is_empty()
    }

    fn hex(&self, key: &str) -> Vec<u8> {
        unhex(self.get(key), self.line, key)
    }

    fn arr<const N: usize>(&self, key: &str) -> [u8; N] {
        self.hex(key).try_into().unwrap_or_else(|v: Vec<u8>| {
            panic!(
                "vector at line {}: `{key}` is {} bytes, want {N}",
                self.line,
                v.len()
            )
        })
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("vector at line {}: `{key}` is not a number", self.line))
    }
}

fn unhex(s: &str, line: usize, key: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("vector at line {line}: `{key}` is not hex: {e}"))
}

fn parse_vectors(doc: &str) -> Vec<Vector> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut cur: Option<Vector> = None;
    for (i, raw) in doc.lines().enumerate() {
        let line = raw.trim_end();
        if !inside {
            inside = line == "```vectors";
            continue;
        }
        if line == "```" || line.is_empty() {
            out.extend(cur.take());
            inside = line != "```";
            continue;
        }
        if line.starts_with(' ') {
            let v = cur.as_mut().expect("continuation line before any field");
            let last = v
                .fields
                .last_mut()
                .expect("continuation line before any field");
            last.1.push_str(line.trim());
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("FORMAT.md line {}: not `field: value`", i + 1));
        let v = v.strip_prefix(' ').unwrap_or(v);
        let entry = cur.get_or_insert_with(|| Vector {
            line: i + 1,
            fields: Vec::new(),
        });
        let v = if TEXT.contains(&k) {
            v.to_string()
        } else {
            v.replace(' ', "")
        };
        entry.fields.push((k.to_string(), v));
    }
    assert!(!inside, "FORMAT.md: unterminated ```vectors block");
    out
}

fn doc_vectors() -> Vec<Vector> {
    let doc = std::fs::read_to_string(DOC).unwrap_or_else(|e| panic!("reading {DOC}: {e}"));
    parse_vectors(&doc)
}

// ---------------------------------------------------------------------------
// The format, written out from FORMAT.md without vault-core

/// HKDF-SHA256 (RFC 5869): salt "pivault-hkdf-v1", info = label || 0x00 || context.
fn hkdf(ikm: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let salt = hmac::Key::new(hmac::HMAC_SHA256, b"pivault-hkdf-v1");
    let prk = hmac::sign(&salt, ikm);
    let prk = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(context);
    let mut out = Vec::new();
    let mut t: Vec<u8> = Vec::new();
    for i in 1..=len.div_ceil(32) {
        let mut m = t.clone();
        m.extend_from_slice(&info);
        m.push(i as u8);
        t = hmac::sign(&prk, &m).as_ref().to_vec();
        out.extend_from_slice(&t);
    }
    out.truncate(len);
    out
}

fn key32(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    hkdf(ikm, label, context, 32).try_into().unwrap()
}

/// First 16 bytes of HMAC-SHA256(binding key, domain || for each field:
/// u32 BE length || field).
fn binding(master: &[u8], domain: &str, fields: &[&[u8]]) -> [u8; 16] {
    let key = key32(master, "pivault v1 bindings", b"");
    let mut msg = domain.as_bytes().to_vec();
    for f in fields {
        msg.extend_from_slice(&(f.len() as u32).to_be_bytes());
        msg.extend_from_slice(f);
    }
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &msg);
    tag.as_ref()[..16].try_into().unwrap()
}

fn header_core(suite_id: u8, key_version: u32, file_id: &[u8; 16]) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[..4].copy_from_slice(b"PVLT");
    c[4] = 1;
    c[5] = suite_id;
    c[6] = 12;
    c[8..12].copy_from_slice(&key_version.to_be_bytes());
    c[12..28].copy_from_slice(file_id);
    c
}

/// `nonce || ciphertext || tag` with RustCrypto's AEADs.
fn seal(suite_id: u8, key: &[u8; 32], nonce: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut body = plain.to_vec();
    let tag = match suite_id {
        1 => aes_gcm::Aes256Gcm::new(key.into())
            .encrypt_in_place_detached(nonce.into(), aad, &mut body)
            .unwrap()
            .to_vec(),
        2 => chacha20poly1305::XChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(nonce.into(), aad, &mut body)
            .unwrap()
            .to_vec(),
        s => panic!("no suite {s}"),
    };
    [nonce, &body, &tag].concat()
}

struct ContentSpec<'a> {
    suite_id: u8,
    data_key: &'a [u8; 32],
    key_version: u32,
    file_id: &'a [u8; 16],
    binding: &'a [u8; 16],
    plain: &'a [u8],
    nonces: &'a [Vec<u8>],
}

/// A whole content file: header (core, binding slot 0, three zero slots)
/// and blocks of 4096 bytes, block i sealed with `nonces[i]`.
fn content_file(s: &ContentSpec) -> Vec<u8> {
    let core = header_core(s.suite_id, s.key_version, s.file_id);
    let key = key32(s.data_key, "pivault v1 file content", s.file_id);
    let mut out = core.to_vec();
    out.extend_from_slice(s.binding);
    out.extend_from_slice(&[0u8; 48]);
    let chunks: Vec<&[u8]> = if s.plain.is_empty() {
        vec![&[]]
    } else {
        s.plain.chunks(4096).collect()
    };
    assert_eq!(chunks.len(), s.nonces.len(), "one nonce per block");
    for (i, (chunk, nonce)) in chunks.iter().zip(s.nonces).enumerate() {
        let mut aad = core.to_vec();
        aad.extend_from_slice(&(i as u64).to_be_bytes());
        aad.push((i + 1 == chunks.len()) as u8);
        out.extend_from_slice(&seal(s.suite_id, &key, nonce, &aad, chunk));
    }
    out
}

/// AES-SIV (RFC 5297, 512-bit key) with the parent directory ID as the one
/// associated-data component, base64url without padding.
fn siv_name(master: &[u8], dir: &[u8; 16], name: &[u8]) -> String {
    let key = hkdf(master, "pivault v1 names", b"", 64);
    let mut siv = aes_siv::siv::Aes256Siv::new(key.as_slice().into());
    B64URL.encode(siv.encrypt([&dir[..]], name).unwrap())
}

fn long_entry(full: &str) -> String {
    let h = digest::digest(&digest::SHA256, full.as_bytes());
    format!("pivault.long.{}", B64URL.encode(h.as_ref()))
}

fn dirid_file(master: &[u8], id: &[u8; 16], parent: &[u8; 16], name: &[u8]) -> Vec<u8> {
    let mut out = b"PVDI\x01\x00\x00\x00".to_vec();
    out.extend_from_slice(id);
    out.extend_from_slice(&binding(master, "pivault dir v1", &[id, parent, name]));
    out
}

fn keyring_bytes(master: &[u8; 32], data: &[(u32, [u8; 32])]) -> Vec<u8> {
    let mut out = b"PVKR\x01\x01\x00\x20".to_vec();
    out.extend_from_slice(master);
    for (v, k) in data {
        out.extend_from_slice(&[0x02, 0x00, 0x24]);
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(k);
    }
    out
}

fn symlink_target(
    master: &[u8],
    suite_id: u8,
    dir: &[u8; 16],
    name: &[u8],
    target: &[u8],
    nonce: &[u8],
) -> String {
    let key = key32(master, "pivault v1 symlink targets", b"");
    let mut aad = b"PVSL".to_vec();
    aad.push(suite_id);
    aad.extend_from_slice(dir);
    aad.extend_from_slice(name);
    let mut msg = vec![suite_id];
    msg.extend_from_slice(&seal(suite_id, &key, nonce, &aad, target));
    B64URL.encode(msg)
}

/// The plaintext of pattern vectors: byte i is i mod 251.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn cipher(master: [u8; 32], data: &[(u32, [u8; 32])], suite: Suite) -> VaultCipher {
    let keys: BTreeMap<u32, SecretKey> = data
        .iter()
        .map(|(v, k)| (*v, SecretKey::from_bytes(*k)))
        .collect();
    VaultCipher::new(
        Keyring::from_parts(SecretKey::from_bytes(master), keys).unwrap(),
        suite,
    )
}

fn suite_of(v: &Vector) -> Suite {
    let id: u8 = v.num("suite");
    Suite::from_id(id).unwrap_or_else(|| panic!("vector at line {}: suite {id}", v.line))
}

// ---------------------------------------------------------------------------
// Checks, one per kind

fn check_hkdf(v: &Vector) {
    let ikm = v.hex("ikm");
    let label = v.get("label");
    let context = v.hex("context");
    let okm = v.hex("okm");
    assert_eq!(
        hkdf(&ikm, label, &context, okm.len()),
        okm,
        "line {}: HKDF as documented",
        v.line
    );
    let mut got = vec![0u8; okm.len()];
    derive(&ikm, label, &context, &mut got).unwrap();
    assert_eq!(got, okm, "line {}: vault_core::derive", v.line);
}

fn check_content(v: &Vector) {
    let suite = suite_of(v);
    let master: [u8; 32] = v.arr("master");
    let key_version: u32 = v.num("data_key_version");
    let data_key: [u8; 32] = v.arr("data_key");
    let dir: [u8; 16] = v.arr("dir_id");
    let name = v.get("name").as_bytes();
    let file_id: [u8; 16] = v.arr("file_id");
    let plain = if v.has("plaintext") {
        v.get("plaintext").as_bytes().to_vec()
    } else {
        pattern(v.num("plaintext_pattern_len"))
    };
    let nonces: Vec<Vec<u8>> = v
        .all("nonce")
        .iter()
        .map(|n| unhex(n, v.line, "nonce"))
        .collect();
    assert!(nonces.iter().all(|n| n.len() == suite.nonce_len()));
    let core = header_core(suite.id(), key_version, &file_id);
    let tag = binding(&master, "pivault file v1", &[&core, &dir, name]);
    let file = content_file(&ContentSpec {
        suite_id: suite.id(),
        data_key: &data_key,
        key_version,
        file_id: &file_id,
        binding: &tag,
        plain: &plain,
        nonces: &nonces,
    });
    if v.has("file") {
        assert_eq!(
            hex::encode(&file),
            hex::encode(v.hex("file")),
            "line {}: file as documented",
            v.line
        );
    }
    if v.has("file_sha256") {
        let sum = digest::digest(&digest::SHA256, &file);
        assert_eq!(sum.as_ref(), v.hex("file_sha256"), "line {}", v.line);
    }
    assert_eq!(
        file.len() as u64,
        v.num::<u64>("file_len"),
        "line {}",
        v.line
    );

    // vault-core opens it through the documented name and reads it back.
    // The vault's own suite is deliberately the other one: the header decides.
    let other = if suite == Suite::Aes256Gcm {
        Suite::XChaCha20Poly1305
    } else {
        Suite::Aes256Gcm
    };
    let c = cipher(master, &[(key_version, data_key)], other);
    let at = NameContext::new(&dir, name);
    let f = ContentFile::open(file.clone(), &c, at)
        .unwrap_or_else(|e| panic!("line {}: vault-core cannot open the file: {e}", v.line));
    assert_eq!(f.header().suite, suite);
    assert_eq!(f.header().key_version, key_version);
    assert_eq!(f.header().file_id, file_id);
    assert_eq!(f.header().core_bytes()[..], file[..32]);
    assert_eq!(f.size(), plain.len() as u64);
    let mut buf = vec![0u8; plain.len() + 10];
    assert_eq!(f.read_at(0, &mut buf).unwrap(), plain.len());
    assert!(
        buf[..plain.len()] == plain[..],
        "line {}: plaintext",
        v.line
    );
    assert!(f.verify().unwrap().is_empty());
    assert!(f.is_bound_to(&c, at));
    assert!(!f.is_bound_to(&c, NameContext::new(&dir, b"other name")));
    assert!(matches!(
        ContentFile::open(file.clone(), &c, NameContext::new(&[0u8; 16], name)),
        Err(Error::Binding)
    ));
    // Truncation to the previous block boundary, or to the bare header, fails.
    let cut = if plain.len() > 4096 {
        HEADER_LEN + 4096 + suite.overhead()
    } else {
        HEADER_LEN
    };
    let short = ContentFile::open(file[..cut].to_vec(), &c, at);
    assert!(match short {
        Err(e) => e.is_integrity(),
        Ok(f) => f.verify().unwrap() != Vec::<u64>::new(),
    });
}

fn check_name(v: &Vector) {
    let master: [u8; 32] = v.arr("master");
    let dir: [u8; 16] = v.arr("dir_id");
    let name = v.get("name").as_bytes();
    let encoded = v.get("encoded");
    assert_eq!(siv_name(&master, &dir, name), encoded, "line {}", v.line);
    let c = cipher(master, &[(1, [0; 32])], Suite::Aes256Gcm);
    let got = c.names().encrypt(&dir, name).unwrap();
    match (v.has("entry"), &got) {
        (false, EncodedName::Short(s)) => {
            assert_eq!(s, encoded, "line {}: vault-core short name", v.line);
            assert!(s.len() <= 255);
        }
        (true, EncodedName::Long { entry, full }) => {
            assert_eq!(full, encoded, "line {}: vault-core long name", v.line);
            assert_eq!(entry, v.get("entry"));
            assert_eq!(long_entry(full), *entry);
            assert_eq!(long_entry_for(full), *entry);
            assert_eq!(got.side_file().unwrap(), v.get("side"));
            assert!(encoded.len() > 255);
        }
        (long, _) => panic!("line {}: long = {long} but vault-core gave {got:?}", v.line),
    }
    assert_eq!(c.names().decrypt(&dir, encoded).unwrap(), name);
    assert!(matches!(
        c.names().decrypt(&[0xee; 16], encoded),
        Err(Error::Name)
    ));
}

fn check_dirid(v: &Vector) {
    let master: [u8; 32] = v.arr("master");
    let id: [u8; 16] = v.arr("id");
    let parent: [u8; 16] = v.arr("parent_id");
    let name = v.get("name").as_bytes();
    let bytes = v.hex("file");
    assert_eq!(bytes.len(), DIRID_LEN);
    assert_eq!(
        dirid_file(&master, &id, &parent, name),
        bytes,
        "line {}",
        v.line
    );
    let c = cipher(master, &[(1, [0; 32])], Suite::Aes256Gcm);
    let at = NameContext::new(&parent, name);
    assert_eq!(
        DirIdFile::with_id(&c, id, at).to_bytes()[..],
        bytes[..],
        "line {}: vault-core",
        v.line
    );
    assert_eq!(DirIdFile::open(&c, &bytes, at).unwrap().id, id);
    let elsewhere = NameContext::new(&parent, b"elsewhere");
    assert!(DirIdFile::open(&c, &bytes, elsewhere).is_err());
}

fn check_binding(v: &Vector) {
    let master: [u8; 32] = v.arr("master");
    let file_id: [u8; 16] = v.arr("file_id");
    let core = header_core(1, 1, &file_id);
    let dir: [u8; 16] = v.arr("dir_id");
    let name = v.get("name").as_bytes();
    let tag: [u8; 16] = v.arr("tag");
    assert_eq!(
        binding(&master, "pivault file v1", &[&core, &dir, name]),
        tag,
        "line {}",
        v.line
    );
    // vault-core's binding is only reachable through a header: put the tag
    // in slot 2 of an otherwise unbound file and ask whether it is bound.
    let data_key = [0x77u8; 32];
    let mut file = content_file(&ContentSpec {
        suite_id: 1,
        data_key: &data_key,
        key_version: 1,
        file_id: &file_id,
        binding: &[0u8; 16],
        plain: b"",
        nonces: &[vec![0u8; 12]],
    });
    let c = cipher(master, &[(1, data_key)], Suite::Aes256Gcm);
    let at = NameContext::new(&dir, name);
    assert!(ContentFile::open(file.clone(), &c, at).is_err());
    file[32 + 32..32 + 48].copy_from_slice(&tag);
    let f = ContentFile::open(file, &c, at)
        .unwrap_or_else(|e| panic!("line {}: vault-core rejects the tag: {e}", v.line));
    assert_eq!(f.size(), 0);
}

fn check_keyring(v: &Vector) {
    let bytes = v.hex("bytes");
    if v.has("reason") {
        let got = Keyring::from_bytes(&bytes);
        assert!(
            matches!(got, Err(Error::Keyring(_))),
            "line {}: invalid keyring accepted",
            v.line
        );
        return;
    }
    let master: [u8; 32] = v.arr("master");
    let mut data = Vec::new();
    for d in v.all("data_key") {
        let (ver, key) = d.split_once('=').expect("data_key: version=hex");
        let key: [u8; 32] = unhex(key, v.line, "data_key").try_into().unwrap();
        data.push((ver.parse::<u32>().unwrap(), key));
    }
    assert_eq!(keyring_bytes(&master, &data), bytes, "line {}", v.line);
    let c = cipher(master, &data, Suite::Aes256Gcm);
    assert_eq!(
        c.keyring().to_bytes().expose(),
        &bytes[..],
        "line {}",
        v.line
    );
    let back = Keyring::from_bytes(&bytes).unwrap();
    assert_eq!(back.master().expose(), &master);
    assert_eq!(
        back.versions(),
        data.iter().map(|d| d.0).collect::<Vec<_>>()
    );
}

fn check_symlink(v: &Vector) {
    let suite = suite_of(v);
    let master: [u8; 32] = v.arr("master");
    let dir: [u8; 16] = v.arr("dir_id");
    let name = v.get("name").as_bytes();
    let target = v.get("target").as_bytes();
    let nonce = v.hex("nonce");
    let encoded = v.get("encoded");
    assert_eq!(
        symlink_target(&master, suite.id(), &dir, name, target, &nonce),
        encoded,
        "line {}",
        v.line
    );
    for vault_suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
        let c = cipher(master, &[(1, [0; 32])], vault_suite);
        assert_eq!(
            c.open_symlink(&dir, name, encoded.as_bytes()).unwrap(),
            target,
            "line {}",
            v.line
        );
        assert!(c.open_symlink(&dir, b"x", encoded.as_bytes()).is_err());
    }
}

fn check_lengths(v: &Vector) {
    let suite = suite_of(v);
    let geo = Geometry::new(suite);
    let o = suite.overhead() as u64;
    for entry in v.all("len") {
        let (len, size) = entry.split_once(' ').expect("len: LEN SIZE|invalid");
        let len: u64 = len.parse().unwrap();
        // The rule of FORMAT.md, written out.
        let by_rule = len.checked_sub(96).and_then(|body| {
            let (q, r) = (body / (4096 + o), body % (4096 + o));
            match (q, r) {
                (0, 0) => None,
                (_, 0) => Some(q * 4096),
                (0, r) if r == o => Some(0),
                (_, r) if r > o => Some(q * 4096 + r - o),
                _ => None,
            }
        });
        let want = (size != "invalid").then(|| size.parse::<u64>().unwrap());
        assert_eq!(by_rule, want, "line {}: rule for length {len}", v.line);
        match want {
            Some(s) => {
                assert_eq!(geo.plaintext_len(len).unwrap(), s, "length {len}");
                assert_eq!(geo.ciphertext_len(s), len);
            }
            None => assert!(
                matches!(geo.plaintext_len(len), Err(Error::Length(l)) if l == len),
                "length {len} should be invalid"
            ),
        }
    }
}

#[test]
fn format_md_vectors_match_the_code() {
    let vectors = doc_vectors();
    let mut seen = BTreeMap::<String, usize>::new();
    for v in &vectors {
        match v.kind() {
            "hkdf" => check_hkdf(v),
            "content" => check_content(v),
            "name" => check_name(v),
            "dirid" => check_dirid(v),
            "binding" => check_binding(v),
            "keyring" => check_keyring(v),
            "symlink" => check_symlink(v),
            "lengths" => check_lengths(v),
            // Checked by keys/tests/keystore_format.rs.
            "keystore" | "keystore-3" => {}
            k => panic!("vector at line {}: unknown kind `{k}`", v.line),
        }
        *seen.entry(v.kind().to_string()).or_default() += 1;
    }
    let kinds: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    for k in [
        "hkdf", "content", "name", "dirid", "binding", "keyring", "symlink", "lengths",
    ] {
        assert!(kinds.contains(k), "FORMAT.md has no `{k}` vector");
    }
    assert!(seen["hkdf"] >= 7, "one HKDF vector per label");
}

/// The parser itself: continuation lines, repeats, blank-line separation.
#[test]
fn vector_parser() {
    let doc = "x\n```vectors\nkind: a\nk: 00 11\n  22\nname:\nn: 1\nn: 2\n\nkind: b\n```\n```rust\nkind: c\n```\n";
    let v = parse_vectors(doc);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].hex("k"), vec![0, 0x11, 0x22]);
    assert_eq!(v[0].get("name"), "");
    assert_eq!(v[0].all("n"), vec!["1", "2"]);
    assert_eq!(v[1].kind(), "b");
    assert_eq!(v[1].line, 10);
}

// ---------------------------------------------------------------------------
// Regenerating the document's vectors

const MASTER: [u8; 32] = seq(0x00);
const DATA_KEY_1: [u8; 32] = seq(0x20);
const DATA_KEY_2: [u8; 32] = seq(0x40);
const ROOT_ID: [u8; 16] = seq(0xa0);
const HR_ID: [u8; 16] = seq(0xb0);
const FILE_ID: [u8; 16] = seq(0xf0);

const fn seq<const N: usize>(from: u8) -> [u8; N] {
    let mut a = [0u8; N];
    let mut i = 0;
    while i < N {
        a[i] = from.wrapping_add(i as u8);
        i += 1;
    }
    a
}

fn wrap(key: &str, hex: &str) -> String {
    let mut out = format!("{key}: ");
    let first = 64usize.min(hex.len());
    out.push_str(&hex[..first]);
    for chunk in hex.as_bytes()[first..].chunks(64) {
        out.push_str("\n    ");
        out.push_str(std::str::from_utf8(chunk).unwrap());
    }
    out
}

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
#[ignore = "prints the vectors for FORMAT.md"]
fn print_vectors() {
    let mut blocks: Vec<Vec<String>> = Vec::new();
    // HKDF, one per label.
    let mut b = Vec::new();
    for (ikm, label, ctx, len) in [
        (&DATA_KEY_1[..], "pivault v1 file content", &FILE_ID[..], 32),
        (&MASTER[..], "pivault v1 names", &[][..], 64),
        (&MASTER[..], "pivault v1 bindings", &[][..], 32),
        (&MASTER[..], "pivault v1 symlink targets", &[][..], 32),
        (&MASTER[..], "pivault v1 keystore mac", &[][..], 32),
        (&MASTER[..], "pivault v1 xattr names", &[][..], 64),
        (&MASTER[..], "pivault v1 xattr values", &[][..], 32),
    ] {
        b.push(format!(
            "kind: hkdf\nikm: {}\nlabel: {label}\ncontext: {}\n{}",
            h(ikm),
            h(ctx),
            wrap("okm", &h(&hkdf(ikm, label, ctx, len)))
        ));
    }
    blocks.push(b);
    // Keyring.
    let kr = keyring_bytes(&MASTER, &[(1, DATA_KEY_1), (2, DATA_KEY_2)]);
    let mut bad = kr.clone();
    bad.extend_from_slice(&[0x03, 0x00, 0x00]);
    blocks.push(vec![
        format!(
            "kind: keyring\nmaster: {}\ndata_key: 1={}\ndata_key: 2={}\n{}",
            h(&MASTER),
            h(&DATA_KEY_1),
            h(&DATA_KEY_2),
            wrap("bytes", &h(&kr))
        ),
        format!(
            "kind: keyring\nreason: unknown tag 0x03\n{}",
            wrap("bytes", &h(&bad))
        ),
    ]);
    // Binding.
    let tag = binding(
        &MASTER,
        "pivault file v1",
        &[&header_core(1, 1, &FILE_ID), &ROOT_ID, b"payroll.csv"],
    );
    blocks.push(vec![format!(
        "kind: binding\nmaster: {}\nfile_id: {}\ndir_id: {}\nname: payroll.csv\ntag: {}",
        h(&MASTER),
        h(&FILE_ID),
        h(&ROOT_ID),
        h(&tag)
    )]);
    // Content files.
    let mut b = Vec::new();
    for (suite, ver, dk, name, plain, nonces, full) in [
        (
            1u8,
            1u32,
            DATA_KEY_1,
            "payroll.csv",
            b"Jane Doe,123-45-6789".to_vec(),
            vec![seq::<12>(0xc0).to_vec()],
            true,
        ),
        (
            2,
            2,
            DATA_KEY_2,
            "payroll.csv",
            Vec::new(),
            vec![seq::<24>(0xc0).to_vec()],
            true,
        ),
        (
            1,
            1,
            DATA_KEY_1,
            "payroll.csv",
            pattern(5000),
            vec![seq::<12>(0xc0).to_vec(), seq::<12>(0xd0).to_vec()],
            false,
        ),
    ] {
        let tag = binding(
            &MASTER,
            "pivault file v1",
            &[
                &header_core(suite, ver, &FILE_ID),
                &ROOT_ID,
                name.as_bytes(),
            ],
        );
        let file = content_file(&ContentSpec {
            suite_id: suite,
            data_key: &dk,
            key_version: ver,
            file_id: &FILE_ID,
            binding: &tag,
            plain: &plain,
            nonces: &nonces,
        });
        let mut s = format!(
            "kind: content\nsuite: {suite}\nmaster: {}\ndata_key_version: {ver}\ndata_key: {}\ndir_id: {}\nname: {name}\nfile_id: {}\n",
            h(&MASTER),
            h(&dk),
            h(&ROOT_ID),
            h(&FILE_ID)
        );
        if full {
            s.push_str(&format!(
                "plaintext: {}\n",
                String::from_utf8(plain).unwrap()
            ));
        } else {
            s.push_str(&format!("plaintext_pattern_len: {}\n", plain.len()));
        }
        for n in &nonces {
            s.push_str(&format!("nonce: {}\n", h(n)));
        }
        s.push_str(&format!("file_len: {}\n", file.len()));
        if full {
            s.push_str(&wrap("file", &h(&file)));
        } else {
            s.push_str(&format!(
                "file_sha256: {}",
                h(digest::digest(&digest::SHA256, &file).as_ref())
            ));
        }
        b.push(s);
    }
    blocks.push(b);
    // Lengths.
    blocks.push(vec![
        "kind: lengths\nsuite: 1\nlen: 95 invalid\nlen: 96 invalid\nlen: 123 invalid\nlen: 124 0\nlen: 125 1\nlen: 4219 4095\nlen: 4220 4096\nlen: 4221 invalid\nlen: 4248 invalid\nlen: 4249 4097\nlen: 8344 8192".to_string(),
        "kind: lengths\nsuite: 2\nlen: 135 invalid\nlen: 136 0\nlen: 137 1\nlen: 4232 4096\nlen: 4272 invalid\nlen: 4273 4097".to_string(),
    ]);
    // Names.
    let mut b = Vec::new();
    let long = "x".repeat(176);
    let longest_short = "x".repeat(175);
    for (dir, name) in [
        (ROOT_ID, "payroll.csv"),
        (HR_ID, "payroll.csv"),
        (ROOT_ID, "Résumé – 2024.pdf"),
        (ROOT_ID, longest_short.as_str()),
        (ROOT_ID, long.as_str()),
    ] {
        let enc = siv_name(&MASTER, &dir, name.as_bytes());
        let mut s = format!(
            "kind: name\nmaster: {}\ndir_id: {}\nname: {name}\nencoded: {enc}",
            h(&MASTER),
            h(&dir)
        );
        if enc.len() > 255 {
            let e = long_entry(&enc);
            s.push_str(&format!("\nentry: {e}\nside: {e}.name"));
        }
        b.push(s);
    }
    blocks.push(b);
    // Directory ID files.
    let mut b = Vec::new();
    for (id, parent, name) in [(ROOT_ID, ROOT_PARENT, ""), (HR_ID, ROOT_ID, "hr")] {
        b.push(format!(
            "kind: dirid\nmaster: {}\nid: {}\nparent_id: {}\nname: {name}\n{}",
            h(&MASTER),
            h(&id),
            h(&parent),
            wrap(
                "file",
                &h(&dirid_file(&MASTER, &id, &parent, name.as_bytes()))
            )
        ));
    }
    blocks.push(b);
    // Symlink.
    let nonce = seq::<12>(0x60);
    blocks.push(vec![format!(
        "kind: symlink\nsuite: 1\nmaster: {}\ndir_id: {}\nname: current\ntarget: ../2024/payroll.csv\nnonce: {}\nencoded: {}",
        h(&MASTER),
        h(&ROOT_ID),
        h(&nonce),
        symlink_target(&MASTER, 1, &ROOT_ID, b"current", b"../2024/payroll.csv", &nonce)
    )]);
    for b in blocks {
        println!("```vectors\n{}\n```\n", b.join("\n\n"));
    }
}
