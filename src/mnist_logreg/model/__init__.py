"""The model, the third stage: the lesson's MNISTModel (lesson), the same model in numpy for fast
inference (linear), calibration and the reject rule, metrics, ONNX export, and the run folder that
holds a trained model (run_folder). Imports from images/ and data/.
"""
