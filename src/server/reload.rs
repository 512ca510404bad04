//! SIGHUP with `--config`: the file read again, as at start, and its sites,
//! rules and certificates swapped in for new requests and handshakes.
//! Requests in flight finish under the sites they began with (each holds
//! its set); open connections keep their certificate. A file that does not
//! read, check or load changes nothing, and the log says why.
//!
//! What a reload does not change: the listeners, the limits, the model, who
//! the process runs as. Those take a restart, and the log says which
//! settings differed.

use std::ffi::OsString;
use std::sync::Arc;

use crate::app::LoadedSites;
use crate::cli::{Cli, CliError};
use crate::config::Config;
use crate::driver::TlsConfig;

/// What a SIGHUP calls, when there is a configuration file to read again.
pub(super) type ConfigReload = Arc<dyn Fn() + Send + Sync>;

/// The reload of `config`'s file, if it has one.
pub(super) fn of(config: &Config, tls: Option<Arc<TlsConfig>>) -> Option<ConfigReload> {
    let command_line = config.reload_from.clone()?;
    let sites = config.app.sites.clone()?;
    Some(Arc::new(move || {
        reread(&command_line, &sites, tls.as_deref())
    }))
}

fn reread(command_line: &[OsString], sites: &LoadedSites, tls: Option<&TlsConfig>) {
    let fresh = Cli::from_command_line(command_line.to_vec())
        .map_err(|e| match e {
            CliError::Usage(e) => e.to_string(),
            CliError::File(errors) => errors.join("; "),
        })
        .and_then(|cli| cli.into_config().map_err(|e| e.replace('\n', "; ")));
    let fresh = match fresh {
        Ok(fresh) => fresh,
        Err(why) => {
            log::error!("configuration not reloaded, the running one is kept: {why}");
            return;
        }
    };
    let Some(new_sites) = &fresh.app.sites else {
        return;
    };
    if let Some(tls) = tls
        && !tls.replace(fresh.tls.as_ref(), &fresh.site_certs)
    {
        return; // said why; the sites stay with the certificates they have
    }
    sites.replace_with(new_sites);
    log::info!("configuration reloaded: {} sites", new_sites.len());
}
