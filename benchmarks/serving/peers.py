"""Files that run inside the peer virtualenvs (kept as text: those venvs lack our package).

``TRAIN`` fits the two benchmark models with the venv's own scikit-learn, so every
server loads an artifact written by the version it runs. ``KSERVE_SERVER`` is a
minimal ``kserve.Model`` in the shape of KServe's scikit-learn server (which is not
published on PyPI): load with joblib, predict through KServe's payload helpers.
"""

TRAIN = r"""
import json, sys, hashlib, pathlib
import joblib
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

out = pathlib.Path(sys.argv[1])
x, y = make_classification(n_samples=10000, n_features=20, random_state=0)
models = {
    "lr": LogisticRegression(max_iter=1000).fit(x, y),
    "rf": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0).fit(x, y),
}
for name, model in models.items():
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    try:
        import skops.io
        skops.io.dump(model, folder / "model.skops")
    except ImportError:
        pass
    (folder / "model-settings.json").write_text(json.dumps({
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }))
"""

KSERVE_SERVER = r"""
import sys
import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(kserve.Model):
    def __init__(self, name, path):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self):
        self._model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    name, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kserve.ModelServer(
        http_port=port, grpc_port=port + 1, enable_grpc=False, enable_latency_logging=False
    ).start(
        [SKLearnModel(name, path)]
    )
"""

CEILING = r"""
import json, sys, time
import numpy as np
import orjson
from sklearn.datasets import make_classification
from coalmine_serving import protocol_v2
from coalmine_serving.loading import load_artifact
from coalmine_serving.model import from_object

folder, seconds = sys.argv[1], float(sys.argv[2])
x, _ = make_classification(n_samples=10000, n_features=20, random_state=0)
bodies = [orjson.dumps({"inputs": [{"name": "input-0", "shape": [1, 20], "datatype": "FP64",
                                    "data": x[i].tolist()}]}) for i in range(100)]
result = {}
for name in ("lr", "rf"):
    est, fmt = load_artifact(f"{folder}/{name}/model.skops", sha256=None, fmt=None,
                             allow_unsafe_pickle=False)
    model = from_object(est, fmt)

    def rate(fn):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn(n)
            n += 1
        return n / (time.perf_counter() - start)

    def request(n):
        infer = protocol_v2.decode(bodies[n % 100], model, 1000)
        protocol_v2.encode(name, "1", infer, model.predict(infer.rows), model.classes)

    batch = np.ascontiguousarray(x[:64])
    result[name] = {
        "public_predict_1_row_per_s": rate(lambda n: est.predict(x[n % 100 : n % 100 + 1])),
        "served_request_1_row_per_s": rate(request),
        "fast_predict_rows_per_s_batch64": 64 * rate(lambda n: model.predict(batch)),
        "fast_path": model.fast,
    }
print(json.dumps(result))
"""
