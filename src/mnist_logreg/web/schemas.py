"""What the API takes and answers: FastAPI writes the OpenAPI schema (and /docs) from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import Limits


class ImageUpload(BaseModel):
    """multipart/form-data: one image file, or several ``file`` fields for a batch."""

    file: list[bytes] = Field(
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
        description=f"PNG, JPEG, GIF, BMP, TIFF or WebP files, 1 to {Limits.files}; with more than one, the answer is a list",
    )


class ImageJSON(BaseModel):
    """application/json: one image as base64, as a canvas's toDataURL gives it."""

    image: str = Field(
        description="base64 PNG or JPEG, optionally a data: URL",
        pattern=r"^(data:[^,]*,)?[A-Za-z0-9+/]*={0,2}$",  # what image_from_json accepts
    )


class ClassScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    label: int
    class_name: str = Field(alias="class")
    probability: float


State = Literal["accepted", "unsure", "rejected"]
STATE_HELP = (
    'accepted: a digit; unsure: a digit is likeliest, but below the run\'s threshold ("3 or 5?", see '
    'candidates); rejected: "not a digit" (a letter, a scribble, a blank) is likeliest'
)
CANDIDATES_HELP = "only when unsure: the two likeliest classes, likeliest first"


class Prediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    state: State = Field(description=STATE_HELP)
    accepted: bool = Field(description="true for the state accepted only")
    label: int | None = Field(description="the class's index; null when the image is not accepted")
    class_name: str = Field(alias="class", description='the class; "unsure" when unsure; "not a digit" when rejected')
    candidates: list[str] | None = Field(default=None, description=CANDIDATES_HELP)
    probability: float = Field(
        description="of the class; when unsure, of the two candidates together; when rejected, 1 minus that of the likeliest digit"
    )
    top_k: list[ClassScore] = Field(description="the likeliest classes, whether or not the image is accepted")
    probabilities: list[float] = Field(description='one per class, then one for "not a digit" if the model has it')
    preprocessed: str = Field(description="the 28×28 image the model saw, as a PNG data URL")
    reason: str | None = Field(
        default=None, description='only for an image with no ink (blank, one flat colour): why it is "not a digit"'
    )
    evidence: Evidence | None = Field(default=None, description="with ?explain=1 only")


class Evidence(BaseModel):
    """Why: each pixel's exact contribution (w · x) to the two likeliest outputs, as PNG data URLs."""

    predicted: int = Field(description='the likeliest output: a class index, or the last one for "not a digit"')
    runner_up: int
    limit: float = Field(description="the |contribution| at the colour scale's ends (red +, blue -)")
    input: str = Field(description="what the model saw")
    for_predicted: str
    for_runner_up: str
    difference: str = Field(description="for_predicted minus for_runner_up: why this class and not that")
    captions: dict[str, str] = Field(
        description='what each map shows, in words, keyed as the maps are: "input", "for_predicted", ...'
    )


class ErrorAnswer(BaseModel):
    error: str


class FilePrediction(Prediction):
    """One file's answer in a batch (several ``file`` fields in one request)."""

    filename: str


class FileError(BaseModel):
    """One bad file in a batch: the others are still predicted."""

    filename: str
    error: str


class DigitReading(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    state: State = Field(description=STATE_HELP + "; a rejected part is left out of the number, an unsure one is ?")
    accepted: bool = Field(description="true for the state accepted only")
    label: int | None = Field(description="the digit; null when the part is not accepted")
    class_name: str = Field(alias="class", description='the digit; "unsure" when unsure; "not a digit" when rejected')
    candidates: list[str] | None = Field(default=None, description=CANDIDATES_HELP)
    probability: float
    top_k: list[ClassScore]
    box: list[int] = Field(description="[x, y, w, h] in the uploaded image's pixels")
    evidence: Evidence | None = Field(default=None, description="with ?explain=1 only")


class NumberReading(BaseModel):
    text: str = Field(description="the number: the digits left to right, ? for one read unsure")
    probability: float = Field(description="the product of the accepted digits' probabilities (0 if none is)")
    digits: list[DigitReading]
    reason: str | None = Field(default=None, description="only when no digit was found: why")


class FileNumberReading(NumberReading):
    filename: str


class Health(BaseModel):
    status: str


class CorrectionsState(BaseModel):
    stored: int = Field(description="corrections kept in the server's corrections folder")
    learnt: int = Field(description="corrections the served model was tuned on (0: the run as trained)")
    ready: bool = Field(description="the run's data is read and a tune starts at once (a tune asked before waits)")
    tuning: bool = Field(description="a tune is running; the model is swapped when it ends")
    error: str | None = Field(description="why the last tune failed; null if it did not")
    limit: int = Field(description="the most corrections the folder keeps")


class ModelAnswer(BaseModel):
    run: str = Field(description="the served run's folder name: a tuned-NNNN once a tune has ended")
    model: dict = Field(description="the run's model.json")
    metrics: dict | None = Field(description="test_acc, test_loss, val_acc; null if the run has no metrics.json")
    corrections: CorrectionsState | None = Field(description="null unless served with --corrections DIR")


class LabelledImageJSON(ImageJSON):
    """application/json: one image as base64, and the class it shows."""

    label: str = Field(description="the class's name, one of the run's classes (model.json's classes)")


class LabelledImageUpload(BaseModel):
    """multipart/form-data: one image file and the class it shows."""

    file: bytes = Field(json_schema_extra={"format": "binary"}, description="PNG, JPEG, GIF, BMP, TIFF or WebP")
    label: str = Field(description="the class's name, one of the run's classes (model.json's classes)")


class StoredCorrection(BaseModel):
    name: str = Field(description="where it is kept, relative to the corrections folder: <class>/<name>")
    label: str
    stored: int = Field(description="corrections kept now")


class TuneStarted(BaseModel):
    status: Literal["tuning"]
    corrections: int = Field(description="the corrections this tune learns from")


ERRORS = {
    400: "malformed JSON, base64 or multipart body, or no image field",
    413: f"body over {Limits.upload_bytes // (1024 * 1024)} MB, or an image over the megapixel limit",
    503: "busy (too many predictions queued) or a prediction over the time limit: retry after Retry-After",
    415: "neither multipart/form-data nor application/json",
    422: "not a readable image (one with no ink is answered as not a digit)",
    500: "an error in the server itself (logged)",
}


def request_body(multipart: type[BaseModel] = ImageUpload, json: type[BaseModel] = ImageJSON) -> dict:
    """The OpenAPI request body of a route that takes an image: one route, two content types, from the models above."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": multipart.model_json_schema()},
            "application/json": {"schema": json.model_json_schema()},
        },
    }
