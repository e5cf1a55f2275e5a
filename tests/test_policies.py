import json

from infra.policies import POLICIES, Resources

R = Resources("aws", "eu-west-1", "123456789012", "events", "preds", "mlflow", "checkpoints")


def statements(component):
    return POLICIES[component](R)["Statement"]


def test_every_statement_names_resources_no_wildcard_service_or_account():
    for component in POLICIES:
        for st in statements(component):
            assert st["Effect"] == "Allow"
            assert all(":*" not in a and a != "*" for a in st["Action"])
            for arn in st["Resource"]:
                assert arn != "*"
                assert arn.startswith(("arn:aws:kinesis:eu-west-1:123456789012:stream/events",
                                       "arn:aws:dynamodb:eu-west-1:123456789012:table/checkpoints",
                                       "arn:aws:s3:::preds", "arn:aws:s3:::mlflow",
                                       "arn:aws:glue:eu-west-1:123456789012:")), arn
                if arn.startswith("arn:aws:glue:"):  # the catalog, its database and the predictions' table only
                    assert arn.split(":", 5)[5] in ("catalog", "database/traffic_stream",
                                                    "table/traffic_stream/predictions"), arn


def test_each_component_gets_only_its_own_actions():
    actions = {c: {a for st in statements(c) for a in st["Action"]} for c in POLICIES}
    assert actions["producer"] <= {"kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStreamSummary"}
    assert "kinesis:PutRecords" not in actions["consumer"] | actions["trainer"]
    assert "kinesis:GetRecords" not in actions["producer"] | actions["trainer"]
    assert not any(a.startswith("dynamodb:") for a in actions["producer"] | actions["trainer"])
    assert "s3:DeleteObject" not in actions["producer"]
    assert not any(a.startswith("glue:") for c in POLICIES if c != "trainer" for a in actions[c])


def test_only_compaction_deletes_results_and_only_what_it_replaces():
    deletes = sorted(arn for st in statements("trainer") if "s3:DeleteObject" in st["Action"] for arn in st["Resource"])
    assert deletes == ["arn:aws:s3:::preds/compacted/*", "arn:aws:s3:::preds/predictions/*"]
    writes = sorted(arn for st in statements("trainer") if "s3:PutObject" in st["Action"] for arn in st["Resource"])
    assert writes == ["arn:aws:s3:::preds/compacted/*", "arn:aws:s3:::preds/history/*"]


def test_consumer_writes_only_its_prefixes():
    writes = [arn for st in statements("consumer") if "s3:PutObject" in st["Action"] for arn in st["Resource"]]
    assert sorted(writes) == sorted(["arn:aws:s3:::preds/predictions/*", "arn:aws:s3:::preds/dead-letters/*",
                                     "arn:aws:s3:::preds/drift/*", "arn:aws:s3:::preds/state/*"])


def test_the_trainer_reads_the_drift_events_and_writes_none():
    reads = [arn for st in statements("trainer") if "s3:GetObject" in st["Action"] for arn in st["Resource"]]
    writes = [arn for st in statements("trainer") if "s3:PutObject" in st["Action"] for arn in st["Resource"]]
    assert "arn:aws:s3:::preds/drift/*" in reads and not any("drift" in arn for arn in writes)


def test_documents_are_valid_json_policies():
    for component, build in POLICIES.items():
        doc = json.loads(json.dumps(build(R)))
        assert doc["Version"] == "2012-10-17" and doc["Statement"], component
