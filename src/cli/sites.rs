//! The configuration file's `[[site]]` tables, checked against the system
//! (folders exist, password files read, certificates paired) and turned into
//! what the application compiles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::with_file::FileSettings;
use super::{absolute, existing_dir};
use crate::app::{Gate, RuleSpec, Scope, SiteConfig, StaticConfig, Visibility};
use crate::config::TlsFiles;
use crate::config_file::{RuleFile, SiteFile};

/// What the sites need beyond themselves.
pub(super) struct Defaults<'a> {
    /// The top-level settings every site starts from (its `root` aside).
    pub(super) statics: &'a StaticConfig,
    /// The positional ROOT's site, when there is one: the default site.
    pub(super) root: Option<StaticConfig>,
    pub(super) realm: &'a str,
}

/// The sites, the certificates they name (a site's `cert` is an index into
/// them), and every error found: a site with errors is still returned, as
/// far as it could be read, so that compiling it finds the rest.
pub(super) fn configure(
    file: &FileSettings,
    defaults: &Defaults<'_>,
) -> (Vec<SiteConfig>, Vec<TlsFiles>, Vec<String>) {
    let mut sites = Vec::new();
    let mut certs = Vec::new();
    let mut errors = Vec::new();
    let mut gates = Gates::new(defaults.realm);
    if let Some(root) = &defaults.root {
        sites.push(SiteConfig {
            name: "default".into(),
            statics: Some(root.clone()),
            browser_pages: true,
            ..SiteConfig::default()
        });
    }
    for (site, at) in &file.sites {
        let (config, list) = site_config(site, defaults, &mut gates, &mut certs);
        sites.push(config);
        errors.extend(list.into_iter().map(|e| format!("{at}: site: {e}")));
    }
    (sites, certs, errors)
}

fn site_config(
    site: &SiteFile,
    defaults: &Defaults<'_>,
    gates: &mut Gates<'_>,
    certs: &mut Vec<TlsFiles>,
) -> (SiteConfig, Vec<String>) {
    let mut errors = Vec::new();
    let statics = match &site.root {
        Some(root) => match existing_dir(root, "root") {
            Ok(root) => Some(StaticConfig {
                root,
                listing: site.listing.unwrap_or(defaults.statics.listing),
                compress: site.compress.unwrap_or(defaults.statics.compress),
                visibility: Visibility {
                    hidden: site.hidden.unwrap_or(defaults.statics.visibility.hidden),
                    follow_symlinks: site
                        .follow_symlinks
                        .unwrap_or(defaults.statics.visibility.follow_symlinks),
                },
                ..defaults.statics.clone()
            }),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let mut error_pages = Vec::new();
    for (code, page) in &site.error_pages {
        match code.parse::<u16>() {
            Ok(code) => error_pages.push((code, page.clone())),
            Err(_) => errors.push(format!("error-pages: {code} is not a status code")),
        }
    }
    let cert = match (&site.tls_cert, &site.tls_key) {
        (Some(cert), Some(key)) => {
            certs.push(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
            Some(certs.len() - 1)
        }
        (None, None) => None,
        _ => {
            errors.push("tls-cert and tls-key go together".into());
            None
        }
    };
    let auth = site
        .auth_file
        .as_deref()
        .and_then(|path| gates.get(path).map_err(|e| errors.push(e)).ok());
    let mut rules = Vec::with_capacity(site.rules.len());
    for rule in &site.rules {
        match rule_spec(rule, gates) {
            Ok(spec) => rules.push(spec),
            Err(e) => errors.push(format!("rule (path \"{}\"): {e}", rule.path)),
        }
    }
    // Made absolute now: what a signal reopens is what was opened at start.
    let access_log = site.access_log.as_deref().and_then(|path| {
        absolute(path)
            .map_err(|e| errors.push(format!("access-log {e}")))
            .ok()
    });
    let config = SiteConfig {
        name: site
            .hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "default".into()),
        hosts: site.hosts.clone(),
        statics,
        error_pages,
        rules,
        auth,
        cert,
        browser_pages: true,
        access_log,
    };
    (config, errors)
}

fn rule_spec(rule: &RuleFile, gates: &mut Gates<'_>) -> Result<RuleSpec, String> {
    Ok(RuleSpec {
        path: rule.path.clone(),
        headers: rule
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        redirect: rule.redirect.clone(),
        status: rule.status,
        try_files: rule.try_files.clone(),
        auth: rule
            .auth_file
            .as_deref()
            .map(|p| gates.get(p))
            .transpose()?,
        listing: rule.listing,
        compress: rule.compress,
        hidden: rule.hidden,
        cors_origins: rule.cors_origins.clone(),
    })
}

/// One gate per password file, however many rules name it: a guesser held
/// off by one is held off by all.
struct Gates<'a> {
    realm: &'a str,
    by_path: HashMap<PathBuf, Arc<Gate>>,
}

impl<'a> Gates<'a> {
    fn new(realm: &'a str) -> Gates<'a> {
        Gates {
            realm,
            by_path: HashMap::new(),
        }
    }

    fn get(&mut self, path: &Path) -> Result<Arc<Gate>, String> {
        if let Some(gate) = self.by_path.get(path) {
            return Ok(Arc::clone(gate));
        }
        let gate = Arc::new(
            Gate::load(path, self.realm, Scope::Everything)
                .map_err(|e| format!("auth-file {e}"))?,
        );
        self.by_path.insert(path.to_owned(), Arc::clone(&gate));
        Ok(gate)
    }
}
