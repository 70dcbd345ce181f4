"""specglue.train.config: typed configs from YAML with key=value overrides."""

import pytest

from specglue.train.config import TrainConf, config_to_dict, dump_config, load_config


def test_yaml_and_overrides_build_a_typed_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  images: [a, b]\n  homography: {size: [64, 48], max_angle_deg: 180}\n"
                    "optim: {lr: 1.0e-4}\n")
    conf = load_config(path, ["optim.lr=3e-4", "model.specular_mode=soft", "run.tensorboard=false",
                              "data.homography.placements=[independent]"])
    assert isinstance(conf, TrainConf)
    assert conf.data.images == ("a", "b") and conf.data.homography.size == (64, 48)
    assert conf.data.homography.max_angle_deg == 180.0 and conf.data.homography.placements == ("independent",)
    assert conf.optim.lr == 3e-4 and conf.model.specular_mode == "soft" and conf.run.tensorboard is False
    assert conf.optim.steps == TrainConf().optim.steps  # untouched fields keep their defaults


def test_the_dumped_config_reads_back_equal(tmp_path):
    conf = load_config(None, ["features.variant=aliked-n16rot", "optim.steps=7"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(conf))
    assert load_config(path) == conf
    assert config_to_dict(conf)["features"]["variant"] == "aliked-n16rot"


@pytest.mark.parametrize("overrides, message", [
    (["optim.learning_rate=1"], r"optim\.learning_rate"),
    (["optim.steps=many"], r"optim\.steps must be an integer"),
    (["run.tensorboard=3"], r"run\.tensorboard must be true or false"),
    (["model.specular_mode=filter"], "specular_mode"),
    (["data.homography.size=[1, 2, 3]"], r"size must have 2 entries"),
    (["nonsense"], "key.sub=value"),
])
def test_bad_keys_and_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, overrides)


def test_a_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        load_config(tmp_path / "nothere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not sections\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        load_config(bad)
