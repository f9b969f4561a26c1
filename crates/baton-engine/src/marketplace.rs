//! The marketplace, installed apps, reward accounts, reward groups and the rewards
//! catalogue (SPEC §4.4, §4.5, §4.7, §4.8).
//!
//! - [`apps`]: listing and installing apps, their configuration (secrets sealed under
//!   the master key, masked on output) and uninstalling them.
//! - [`rewards`]: REWARD apps' funding accounts, tenant-curated reward groups and the
//!   catalogue of the installed REWARD apps.
//!
//! App ids from clients are normalised with [`baton_domain::AppId::parse`]
//! (case-insensitive, `-` ≡ `_`, `TANGOCARD` alias).

pub mod apps;
pub mod rewards;

pub use apps::{InstalledAppSummary, InstalledAppView, MarketplaceApp};
pub use rewards::{CatalogSearch, RewardAccountRequest, RewardAccountView, RewardGroupInput, RewardGroupView};
