from link_zoom.config import Settings


def test_defaults_follow_the_contract() -> None:
    settings = Settings.from_environ({})
    assert settings.zoom_oauth_base_url == "https://zoom.us"
    assert settings.zoom_api_base_url == "https://api.zoom.us/v2"
    assert settings.feature_flag_parameter == "/link/zoom/enabled"
    assert settings.ldap_ca_file is None
    assert settings.zoom_redirect_url is None


def test_environment_replaces_defaults_and_blank_means_unset() -> None:
    settings = Settings.from_environ(
        {
            "ZOOM_OAUTH_BASE_URL": "http://127.0.0.1:8090/",
            "ZOOM_API_BASE_URL": "http://127.0.0.1:8090/v2",
            "FEATURE_FLAG_PARAMETER": "/other/flag",
            "LDAP_CA_FILE": "",
            "ZOOM_REDIRECT_URL": "  ",
            "AWS_REGION": "eu-central-1",
        }
    )
    assert settings.zoom_oauth_base_url == "http://127.0.0.1:8090"
    assert settings.feature_flag_parameter == "/other/flag"
    assert settings.ldap_ca_file is None
    assert settings.zoom_redirect_url is None
    assert settings.region == "eu-central-1"


def test_stream_workers_default_to_16_and_stay_at_least_one() -> None:
    assert Settings.from_environ({}).stream_workers == 16
    assert Settings.from_environ({"STREAM_WORKERS": "1"}).stream_workers == 1
    assert Settings.from_environ({"STREAM_WORKERS": "0"}).stream_workers == 1
    assert Settings.from_environ({"STREAM_WORKERS": "many"}).stream_workers == 16
