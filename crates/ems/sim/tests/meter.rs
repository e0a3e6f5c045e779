use twc_core::plugin::PluginConfig;
use twc_ems_sim::SimConfig;

#[test]
fn example_config_parses_and_unknown_keys_are_named() {
    let cfg = PluginConfig::from_toml("ems.sim", include_str!("../example.toml")).unwrap();
    let c: SimConfig = cfg.parse().unwrap();
    assert_eq!(c.peak_w, 6000.0);
    let bad = PluginConfig::from_toml("ems.sim", "peak_watts = 3").unwrap();
    let err = bad.parse::<SimConfig>().unwrap_err().to_string();
    assert!(
        err.contains("[ems.sim]") && err.contains("peak_watts"),
        "{err}"
    );
}

#[test]
fn night_is_zero_pv_and_clear_noon_is_the_peak() {
    let c = SimConfig {
        cloudiness: 0.0,
        ..SimConfig::default()
    };
    assert_eq!(c.at(3.0).0, 0.0);
    assert_eq!(c.at(22.0).0, 0.0);
    assert!((c.at(13.0).0 - c.peak_w).abs() < 1.0, "{}", c.at(13.0).0);
    assert!(c.at(3.0).1 >= c.base_load_w);
}

#[test]
fn clouds_only_dim_and_the_same_seed_gives_the_same_day() {
    let clear = SimConfig {
        cloudiness: 0.0,
        ..SimConfig::default()
    };
    let cloudy = SimConfig {
        cloudiness: 0.8,
        ..SimConfig::default()
    };
    let mut dimmed = 0;
    for i in 0..24 * 60 {
        let h = i as f64 / 60.0;
        assert!(cloudy.at(h).0 <= clear.at(h).0 + 1e-9);
        dimmed += usize::from(cloudy.at(h).0 < clear.at(h).0 * 0.7);
        assert_eq!(cloudy.at(h), cloudy.clone().at(h));
    }
    assert!(dimmed > 30, "some minutes are noticeably cloudy: {dimmed}");
}

#[tokio::test(start_paused = true)]
async fn readings_are_fresh_and_never_fake_zero_consumption() {
    use twc_core::plugin::EmsSource;
    let m = twc_ems_sim::SimMeter::new(SimConfig {
        time_scale: 3600.0,
        ..SimConfig::default()
    });
    for _ in 0..24 {
        let r = m.read().await.unwrap();
        assert!(r.consumption_w.unwrap() >= 400.0);
        assert!(r.generation_w.unwrap() >= 0.0);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
