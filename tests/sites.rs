//! A real site from a configuration file (`--config`): virtual hosts chosen
//! by `Host`, every rule key, error pages, `--check-config`, and the file
//! under the command line. Each behaviour on every model, over HTTP and
//! HTTPS.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Model, Server};

/// Two sites' folders, a password file and a configuration naming them all,
/// in a temporary folder.
struct Fixture {
    dir: tempfile::TempDir,
}

/// `alice:secret`, hashed with bcrypt (htpasswd -B) at a low cost, to keep
/// the test quick.
fn password_line() -> String {
    let hash = bcrypt::hash("secret", 4).unwrap();
    format!("alice:{hash}\n")
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let put = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        put("blog/index.html", "<h1>the blog</h1>\n");
        put("blog/about.html", "about us\n");
        put("blog/404.html", "<h1>no such page</h1>\n");
        put("blog/assets/app.3f2a.js", "console.log(1)\n");
        put("blog/private/diary.txt", "dear diary\n");
        put("blog/open/a.txt", "a\n");
        put("blog/api/data.json", "{\"n\": 1}\n");
        put("blog/.well-known/security.txt", "Contact: me\n");
        put("blog/text/big.txt", &"compress me ".repeat(200));
        put("blog/big.txt", &"compress me ".repeat(200));
        put("shop/index.html", "the shop\n");
        put("shop/app/index.html", "<div id=app></div>\n");
        put("shop/app/main.js", "app()\n");
        put("users", &password_line());
        let fixture = Fixture { dir };
        fixture.write_config(&fixture.config_text());
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> String {
        self.path("oneloop.toml").to_string_lossy().into_owned()
    }

    fn write_config(&self, text: &str) {
        // Written aside and renamed into place: a reload never reads half.
        let aside = self.path("oneloop.toml.new");
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(aside, self.path("oneloop.toml")).unwrap();
    }

    fn config_text(&self) -> String {
        let root = |name: &str| self.path(name).to_string_lossy().into_owned();
        format!(
            r#"
status = "/.status"

[[site]]
hosts = ["blog.example.org"]
root = "{blog}"
error-pages = {{ 404 = "/404.html" }}

  [[site.rule]]
  path = "/*"
  headers = {{ "X-Content-Type-Options" = "nosniff", "X-Frame-Options" = "DENY" }}

  [[site.rule]]
  path = "/assets/*"
  headers = {{ "Cache-Control" = "public, max-age=31536000, immutable", "X-Frame-Options" = "" }}

  [[site.rule]]
  path = "/old-post"
  redirect = "/blog/2026/{{query}}"
  status = 308

  [[site.rule]]
  path = "/moved/*"
  redirect = "https://{{host}}/new/{{rest}}"

  [[site.rule]]
  path = "/about"
  try-files = ["{{path}}", "{{path}}.html", "=404"]

  [[site.rule]]
  path = "/private/*"
  auth-file = "{users}"

  [[site.rule]]
  path = "/open/*"
  listing = true

  [[site.rule]]
  path = "/.well-known/*"
  hidden = true

  [[site.rule]]
  path = "/text/*"
  compress = false

  [[site.rule]]
  path = "/api/*"
  cors-origins = ["https://app.example.org"]

[[site]]
hosts = ["shop.example.org", "*.shop.example.org"]
root = "{shop}"

  [[site.rule]]
  path = "/app/*"
  try-files = ["{{path}}", "/app/index.html"]

[[site]]
hosts = ["www.example.org"]

  [[site.rule]]
  path = "/*"
  redirect = "https://blog.example.org{{uri}}"
"#,
            blog = root("blog"),
            shop = root("shop"),
            users = root("users"),
        )
    }

    fn start(&self, model: Model) -> Server {
        Server::start_model(model, &["--config", &self.config()])
    }
}

/// A GET for `path` on `host`, with more header lines.
fn get(server: &Server, host: &str, path: &str, more: &str) -> common::Response {
    server.request(&format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{more}\r\n"
    ))
}

fn host_chooses_the_site(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    assert_eq!(
        get(&server, "blog.example.org", "/", "").text(),
        "<h1>the blog</h1>\n"
    );
    assert_eq!(
        get(&server, "shop.example.org", "/", "").text(),
        "the shop\n"
    );
    // Case, a port and a trailing dot do not matter; a wildcard covers names under it.
    for host in [
        "BLOG.Example.ORG",
        "blog.example.org:8443",
        "blog.example.org.",
    ] {
        assert_eq!(
            get(&server, host, "/", "").text(),
            "<h1>the blog</h1>\n",
            "{host}"
        );
    }
    assert_eq!(
        get(&server, "eu.shop.example.org", "/", "").text(),
        "the shop\n"
    );
    // No default site: an unknown host is not found, on every site's paths.
    let unknown = get(&server, "other.test", "/", "");
    assert_eq!(unknown.status, 404);
    assert_eq!(get(&server, "other.test", "/about.html", "").status, 404);
}

fn headers_merge_by_name(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let page = get(&server, "blog.example.org", "/", "");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), None);
    let asset = get(&server, "blog.example.org", "/assets/app.3f2a.js", "");
    assert_eq!(asset.status, 200);
    assert_eq!(
        asset.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        asset.header("x-content-type-options"),
        Some("nosniff"),
        "merged"
    );
    assert_eq!(
        asset.header("x-frame-options"),
        None,
        "set to \"\": removed"
    );
    // Matched on the path in its one spelling.
    let spelled = get(&server, "blog.example.org", "/assets/./%61pp.3f2a.js", "");
    assert_eq!(spelled.status, 200);
    assert!(spelled.header("cache-control").is_some());
    // Headers go on errors too.
    let missing = get(&server, "blog.example.org", "/assets/nope.js", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
}

fn redirects_fill_their_placeholders(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let old = get(&server, "blog.example.org", "/old-post?p=7", "");
    assert_eq!(old.status, 308);
    assert_eq!(old.header("location"), Some("/blog/2026/p=7"));
    let moved = get(&server, "blog.example.org", "/moved/a/b.html", "");
    assert_eq!(moved.status, 301, "301 by default");
    assert_eq!(
        moved.header("location"),
        Some("https://blog.example.org/new/a/b.html")
    );
    let absolute = server
        .request("GET http://WWW.example.org/x/y?q=1 HTTP/1.1\r\nHost: WWW.example.org:80\r\n\r\n");
    assert_eq!(
        absolute.header("location"),
        Some("https://blog.example.org/x/y?q=1"),
        "an absolute-form target is its path and query"
    );
    let moved = get(&server, "BLOG.example.org:8080", "/moved/c", "");
    assert_eq!(
        moved.header("location"),
        Some("https://blog.example.org/new/c"),
        "{{host}} is normalised"
    );
    let www = get(&server, "www.example.org", "/x/y?q=1", "");
    assert_eq!(www.status, 301);
    assert_eq!(
        www.header("location"),
        Some("https://blog.example.org/x/y?q=1"),
        "{{uri}} is the path and query as sent"
    );
}

fn try_files_and_error_pages(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let about = get(&server, "blog.example.org", "/about", "");
    assert_eq!((about.status, about.text().as_str()), (200, "about us\n"));
    // The SPA's deep link gets its index; its real files stay themselves.
    let deep = get(&server, "shop.example.org", "/app/settings/profile", "");
    assert_eq!(
        (deep.status, deep.text().as_str()),
        (200, "<div id=app></div>\n")
    );
    let script = get(&server, "shop.example.org", "/app/main.js", "");
    assert_eq!(script.text(), "app()\n");
    // The site's 404 page, with the 404 status, and no validators to revalidate it by.
    let missing = get(&server, "blog.example.org", "/nope", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "<h1>no such page</h1>\n");
    assert_eq!(missing.header("etag"), None);
    let ranged = get(&server, "blog.example.org", "/nope", "Range: bytes=0-3\r\n");
    assert_eq!(
        (ranged.status, ranged.text().len()),
        (404, 22),
        "no range of an error page"
    );
    // A site without a page of its own: a browser gets a small page, a program the plain one.
    let browser = get(
        &server,
        "shop.example.org",
        "/nope",
        "Accept: text/html\r\n",
    );
    assert_eq!(browser.status, 404);
    assert!(
        browser.text().contains("<h1>404 Not Found</h1>"),
        "{}",
        browser.text()
    );
    let program = get(&server, "shop.example.org", "/nope", "");
    assert_eq!(program.text(), "404 Not Found\n");
}

fn per_path_auth_listing_hidden_compress(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let refused = get(&server, "blog.example.org", "/private/diary.txt", "");
    assert_eq!(refused.status, 401);
    assert!(refused.header("www-authenticate").is_some());
    let credentials = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n"; // alice:secret
    let admitted = get(
        &server,
        "blog.example.org",
        "/private/diary.txt",
        credentials,
    );
    assert_eq!(admitted.text(), "dear diary\n");
    assert_eq!(
        get(&server, "blog.example.org", "/", "").status,
        200,
        "the rest stays open"
    );

    let listed = get(&server, "blog.example.org", "/open/", "");
    assert_eq!(listed.status, 200);
    assert!(listed.text().contains("a.txt"));
    assert_eq!(
        get(&server, "blog.example.org", "/assets/", "").status,
        404,
        "not listed"
    );

    let hidden = get(&server, "blog.example.org", "/.well-known/security.txt", "");
    assert_eq!(hidden.text(), "Contact: me\n");

    let gzip = "Accept-Encoding: gzip\r\n";
    let plain = get(&server, "blog.example.org", "/text/big.txt", gzip);
    assert_eq!(plain.header("content-encoding"), None, "compress = false");
    let compressed = get(&server, "blog.example.org", "/big.txt", gzip);
    assert_eq!(
        compressed.header("content-encoding"),
        Some("gzip"),
        "elsewhere it is"
    );
}

fn cors_for_the_origins_named(model: Model) {
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let origin = "Origin: https://app.example.org\r\n";
    let data = get(&server, "blog.example.org", "/api/data.json", origin);
    assert_eq!(
        data.header("access-control-allow-origin"),
        Some("https://app.example.org")
    );
    assert_eq!(data.header("vary"), Some("Origin"));
    let other = get(
        &server,
        "blog.example.org",
        "/api/data.json",
        "Origin: https://x.test\r\n",
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
    let preflight = server.request(
        "OPTIONS /api/data.json HTTP/1.1\r\nHost: blog.example.org\r\n\
         Origin: https://app.example.org\r\nAccess-Control-Request-Method: GET\r\n\r\n",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, HEAD")
    );
    assert_eq!(
        get(&server, "blog.example.org", "/", origin).header("vary"),
        None
    );
}

every_model!(
    host_chooses_the_site,
    headers_merge_by_name,
    redirects_fill_their_placeholders,
    try_files_and_error_pages,
    per_path_auth_listing_hidden_compress,
    cors_for_the_origins_named,
    sites_and_rules_hold_over_http2,
);

/// curl over HTTP/2 (ALPN over TLS, prior knowledge on cleartext) for
/// `path` on `host`, the name resolved to the server: the status line and
/// fields it printed, then the body.
fn curl_http2(server: &Server, host: &str, path: &str, more: &[&str]) -> (String, String) {
    let port = server.addr.port();
    let (scheme, version) = if server.tls {
        ("https", "--http2")
    } else {
        ("http", "--http2-prior-knowledge")
    };
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--include",
            "--max-time",
            "20",
            version,
        ])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        // The test certificate names localhost, not the sites.
        .args(if server.tls { &["--insecure"][..] } else { &[] })
        .args(more)
        .arg(format!("{scheme}://{host}:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_owned())
}

/// Sites and rules are the application's, so HTTP/2 reaches them as
/// HTTP/1.1 does: the site by :authority, headers, redirects, try-files,
/// error pages and per-path passwords.
fn sites_and_rules_hold_over_http2(model: Model) {
    if !common::have_curl() {
        common::skip("curl is not installed (Debian package curl)");
        return;
    }
    let fixture = Fixture::new();
    let server = fixture.start(model);
    let (head, body) = curl_http2(&server, "shop.example.org", "/", &[]);
    assert!(head.starts_with("http/2 200"), "{head}");
    assert_eq!(body, "the shop\n");
    let (head, body) = curl_http2(&server, "blog.example.org", "/", &[]);
    assert!(head.starts_with("http/2 200"), "{head}");
    assert!(head.contains("\r\nx-frame-options: deny"), "{head}");
    assert_eq!(body, "<h1>the blog</h1>\n");
    let (head, _) = curl_http2(&server, "blog.example.org", "/old-post?p=7", &[]);
    assert!(head.starts_with("http/2 308"), "{head}");
    assert!(head.contains("\r\nlocation: /blog/2026/p=7"), "{head}");
    let (head, _) = curl_http2(&server, "www.example.org", "/x?q=1", &[]);
    assert!(
        head.contains("\r\nlocation: https://blog.example.org/x?q=1"),
        "{head}"
    );
    let (_, body) = curl_http2(&server, "blog.example.org", "/about", &[]);
    assert_eq!(body, "about us\n", "try-files");
    let (head, body) = curl_http2(&server, "blog.example.org", "/nowhere", &[]);
    assert!(head.starts_with("http/2 404"), "{head}");
    assert_eq!(body, "<h1>no such page</h1>\n", "the site's error page");
    let (_, body) = curl_http2(&server, "shop.example.org", "/app/cart/42", &[]);
    assert_eq!(body, "<div id=app></div>\n", "the SPA fallback");
    let (head, _) = curl_http2(&server, "blog.example.org", "/private/diary.txt", &[]);
    assert!(head.starts_with("http/2 401"), "{head}");
    let login = ["--user", "alice:secret"];
    let (head, body) = curl_http2(&server, "blog.example.org", "/private/diary.txt", &login);
    assert!(head.starts_with("http/2 200"), "{head}");
    assert_eq!(body, "dear diary\n");
    let (head, _) = curl_http2(&server, "other.test", "/", &[]);
    assert!(head.starts_with("http/2 404"), "no default site: {head}");
}

fn oneloop(args: &[&str]) -> std::process::Output {
    common::oneloop().args(args).output().expect("run oneloop")
}

#[test]
fn check_config_prints_what_would_run() {
    let fixture = Fixture::new();
    let out = oneloop(&["--check-config", &fixture.config()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("status = \"/.status\"    # the file"),
        "{text}"
    );
    assert!(
        text.contains("max-connections = 1024    # default"),
        "{text}"
    );
    assert!(text.contains("site blog.example.org"), "{text}");
    assert!(text.contains("rule /old-post: redirect 308"), "{text}");
    assert!(text.contains("the configuration is good"));
}

#[test]
fn check_config_names_every_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "port = 80\nlistng = true\nmax-connections = \"many\"\n",
    )
    .unwrap();
    let out = oneloop(&["--check-config", path.to_str().unwrap()]);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let at = path.display().to_string();
    assert!(
        errors.contains(&format!("{at}:2:1: no setting listng")),
        "{errors}"
    );
    assert!(
        errors.contains(&format!("{at}:3:1: max-connections: invalid value")),
        "{errors}"
    );
    std::fs::write(
        &path,
        "[[site]]\nhosts = [\"a\"]\nroot = \"/no/such/folder\"\n",
    )
    .unwrap();
    let out = oneloop(&["--check-config", path.to_str().unwrap()]);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        errors.contains(&format!("{at}:1:1: site: root /no/such/folder")),
        "{errors}"
    );
    std::fs::write(&path, "port = \n").unwrap();
    let out = oneloop(&["--check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{at}:1:")));
}

#[test]
fn the_command_line_overrides_the_file() {
    let fixture = Fixture::new();
    let server = Server::start(&["--config", &fixture.config(), "--status", "/.other"]);
    assert_eq!(server.get("/.other").status, 200);
    assert_eq!(get(&server, "blog.example.org", "/.status", "").status, 404);
}

#[test]
fn a_bad_file_stops_the_start_with_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[site]]\nhosts = [\"a b\"]\n").unwrap();
    let out = oneloop(&["--config", path.to_str().unwrap(), "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"a b\" is not a host name"));
}

/// The positional ROOT is the default site beside the file's: it answers
/// every host no site names.
#[test]
fn root_is_the_default_site() {
    let fixture = Fixture::new();
    let root = fixture.path("shop");
    let server = Server::start(&[root.to_str().unwrap(), "--config", &fixture.config()]);
    assert_eq!(get(&server, "anything.test", "/", "").text(), "the shop\n");
    assert_eq!(
        get(&server, "blog.example.org", "/", "").text(),
        "<h1>the blog</h1>\n"
    );
}

/// Without `--config`, a bare ROOT answers as it always has: a browser's
/// 404 is the plain one.
#[test]
fn without_a_file_nothing_changes() {
    let fixture = Fixture::new();
    let server = Server::start(&[fixture.path("blog").to_str().unwrap()]);
    let missing = get(&server, "x", "/nope", "Accept: text/html\r\n");
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "404 Not Found\n")
    );
}

/// A certificate for `name` alone, written beside the fixture's files.
fn certificate_for(fixture: &Fixture, name: &str) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = fixture.path(&format!("{name}.crt"));
    let key = fixture.path(&format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let text = |p: PathBuf| p.to_string_lossy().into_owned();
    (text(cert), text(key))
}

/// Two sites over HTTPS, each with its own certificate.
fn two_certificates(fixture: &Fixture) -> Server {
    let (blog_cert, blog_key) = certificate_for(fixture, "blog.example.org");
    let (shop_cert, shop_key) = certificate_for(fixture, "shop.example.org");
    let text = format!(
        "[[site]]\nhosts = [\"blog.example.org\"]\nroot = \"{}\"\ntls-cert = \"{blog_cert}\"\n\
         tls-key = \"{blog_key}\"\n\n[[site]]\nhosts = [\"shop.example.org\"]\nroot = \"{}\"\n\
         tls-cert = \"{shop_cert}\"\ntls-key = \"{shop_key}\"\n",
        fixture.path("blog").display(),
        fixture.path("shop").display(),
    );
    fixture.write_config(&text);
    let mut server = Server::start(&["--config", &fixture.config()]);
    server.tls = true;
    server
}

fn curl(server: &Server, fixture: &Fixture, host: &str, more: &[&str]) -> (String, String) {
    let port = server.addr.port();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(fixture.path(&format!("{host}.crt")))
        .args(more)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (body.to_owned(), code.to_owned())
}

#[test]
fn sni_chooses_each_sites_certificate() {
    if !common::have_curl() {
        common::skip("curl is not installed (Debian package curl; CI installs it)");
        return;
    }
    let fixture = Fixture::new();
    let server = two_certificates(&fixture);
    // curl checks each certificate against the name it asked for.
    let blog = curl(&server, &fixture, "blog.example.org", &[]);
    assert_eq!(blog, ("<h1>the blog</h1>\n".into(), "200".into()));
    let shop = curl(&server, &fixture, "shop.example.org", &[]);
    assert_eq!(shop, ("the shop\n".into(), "200".into()));
    // A request for a site whose certificate the handshake did not present.
    let misdirected = curl(
        &server,
        &fixture,
        "blog.example.org",
        &["-H", "Host: shop.example.org"],
    );
    assert_eq!(misdirected.1, "421");
}

#[test]
fn openssl_sees_the_certificate_of_the_name_it_asks_for() {
    let have_openssl = Command::new("openssl").arg("version").output().is_ok();
    if !have_openssl {
        common::skip("openssl is not installed (Debian package openssl; CI installs it)");
        return;
    }
    let fixture = Fixture::new();
    let server = two_certificates(&fixture);
    for name in ["blog.example.org", "shop.example.org"] {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &server.addr.to_string()])
            .args(["-servername", name, "-showcerts"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Verify return code"), "no handshake: {text}");
        // The chain printed is the one written for that name.
        let pem = std::fs::read_to_string(fixture.path(&format!("{name}.crt"))).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let printed: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(printed.contains(&body[..64]), "{name}: another certificate");
    }
}

/// SIGHUP under load: a good file is served from the next request on, a
/// bad one is refused with its reason, and no request fails meanwhile.
#[test]
fn reload_swaps_sites_without_failing_a_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let fixture = Fixture::new();
    let server = Arc::new(fixture.start(Model::Loop));
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            let (served, failed) = (Arc::clone(&served), Arc::clone(&failed));
            std::thread::spawn(move || {
                // A kept connection, and a new one now and then.
                let mut stream = server.connect();
                while !stop.load(Ordering::Relaxed) {
                    let request = b"GET / HTTP/1.1\r\nHost: blog.example.org\r\n\r\n";
                    let ok = std::io::Write::write_all(&mut stream, request).is_ok()
                        && common::read_response(&mut stream, false).status == 200;
                    let counter = if ok { &served } else { &failed };
                    if counter.fetch_add(1, Ordering::Relaxed) % 50 == 49 {
                        stream = server.connect();
                    }
                }
            })
        })
        .collect();
    let frame = |server: &Server| {
        let page = get(server, "blog.example.org", "/", "");
        page.header("x-frame-options").map(str::to_owned)
    };
    let running = |more: usize| {
        let until = served.load(Ordering::Relaxed) + more;
        common::eventually(std::time::Duration::from_secs(10), || {
            served.load(Ordering::Relaxed) >= until
        })
    };
    assert!(running(200), "the load runs");
    assert_eq!(frame(&server).as_deref(), Some("DENY"));
    fixture.write_config(&fixture.config_text().replace("\"DENY\"", "\"SAMEORIGIN\""));
    server.signal(libc::SIGHUP);
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || frame(&server)
            .as_deref()
            == Some("SAMEORIGIN")),
        "the new rules: {}",
        server.log()
    );
    fixture.write_config("[[site]]\nhosts = [\"blog.example.org\"]\nroot = \"/no/such\"\n");
    server.signal(libc::SIGHUP);
    assert!(common::eventually(
        std::time::Duration::from_secs(5),
        || server
            .log()
            .contains("configuration not reloaded, the running one is kept")
    ));
    assert_eq!(
        frame(&server).as_deref(),
        Some("SAMEORIGIN"),
        "still the good one"
    );
    assert!(running(200), "the load runs on");
    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
}

/// contrib/oneloop.toml, as shipped, with its folders and files moved into
/// a temporary folder and its ports and user left to the command line:
/// it serves the site its comments describe.
#[test]
fn the_example_configuration_serves_its_site() {
    if !common::have_curl() {
        common::skip("curl is not installed (Debian package curl; CI installs it)");
        return;
    }
    let fixture = Fixture::new();
    let dir = fixture.dir.path();
    let put = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    put("srv/example.org/index.html", "home\n");
    put("srv/example.org/about.html", "about\n");
    put("srv/example.org/404.html", "custom 404\n");
    put("srv/example.org/assets/app.3f2a9c.js", "js\n");
    put("srv/example.org/private/plans.txt", "plans\n");
    put("srv/shop.example.net/app/index.html", "the app\n");
    put("etc/oneloop/private.users", &password_line());
    let blog = rcgen::generate_simple_self_signed(vec![
        "example.org".to_owned(),
        "www.example.org".to_owned(),
    ])
    .unwrap();
    let shop = rcgen::generate_simple_self_signed(vec!["shop.example.net".to_owned()]).unwrap();
    for (name, made) in [("example.org", &blog), ("shop.example.net", &shop)] {
        put(
            &format!("etc/letsencrypt/live/{name}/fullchain.pem"),
            &made.cert.pem(),
        );
        put(
            &format!("etc/letsencrypt/live/{name}/privkey.pem"),
            &made.signing_key.serialize_pem(),
        );
    }
    let at = dir.display().to_string();
    let shipped = std::fs::read_to_string("contrib/oneloop.toml").unwrap();
    let text: String = shipped
        .lines()
        .filter(|line| !line.starts_with("user ="))
        .map(|line| {
            line.replace("\"/srv/", &format!("\"{at}/srv/"))
                .replace("\"/etc/", &format!("\"{at}/etc/"))
                .replace("\"/var/log/oneloop/", &format!("\"{at}/"))
                + "\n"
        })
        .collect();
    fixture.write_config(&text);
    let config = fixture.config();
    let args = [
        "--config",
        &config,
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--redirect-http",
        "0",
    ];
    let server = Server::start(&args);
    let port = server.addr.port();
    let fetch = |host: &str, path: &str, more: &[&str]| -> (String, String) {
        let ca = match host {
            "shop.example.net" => "shop.example.net",
            _ => "example.org",
        };
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null"])
            .arg("--resolve")
            .arg(format!("{host}:{port}:127.0.0.1"))
            .arg("--cacert")
            .arg(dir.join(format!("etc/letsencrypt/live/{ca}/fullchain.pem")))
            .args(more)
            .arg(format!("https://{host}:{port}{path}"))
            .output()
            .expect("run curl");
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        let status = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        (status, head)
    };
    let (status, head) = fetch("www.example.org", "/a?b=c", &[]);
    assert_eq!(status, "301");
    assert!(
        head.contains("location: https://example.org/a?b=c"),
        "{head}"
    );
    let (status, head) = fetch("example.org", "/assets/app.3f2a9c.js", &[]);
    assert_eq!(status, "200");
    assert!(
        head.contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    let (_, head) = fetch("example.org", "/", &[]);
    assert!(
        head.contains("cache-control: no-cache") && head.contains("nosniff"),
        "{head}"
    );
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert_eq!(fetch("example.org", "/about", &[]).0, "200");
    assert_eq!(fetch("example.org", "/nope", &[]).0, "404");
    assert_eq!(fetch("example.org", "/private/plans.txt", &[]).0, "401");
    let login = ["-u", "alice:secret"];
    assert_eq!(fetch("example.org", "/private/plans.txt", &login).0, "200");
    assert_eq!(fetch("shop.example.net", "/app/cart/3", &[]).0, "200");
    assert_eq!(
        fetch("example.org", "/echo/x", &[]).0,
        "404",
        "no demo endpoints"
    );
}
