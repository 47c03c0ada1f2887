"""The demo world's users: one per situation the console must recognise.

Each ``Persona`` says which finding codes a correct drift engine reports for it
(``expected_codes``, in the order of product.md's "Findings vocabulary"); the comment
above each one says why every code applies and why the near-misses do not. Healthy
personas expect none. Their histories (``CAST``) are acted out against the sandbox with
the app's own calls, so every bug is in the raw values, not painted on.

Two readings of the vocabulary are used throughout:
- version checks (VERSION_NOT_IN_MODEL, STALE_VERSION) need a model to check against, so a
  missing model id or a model that answers 404 is reported as that, not as those;
- TRIGGER/WEIGHTS checks compare with the training that produced the stored version, and
  when there is none (no version, or not a version of any training) with the latest
  succeeded training; the demo rows keep trigger and weights right in that case, so both
  readings agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.demo.photos import SQUEEZED_JPEG_QUALITY, SQUEEZED_LONG_SIDE
from core.demo.script import (
    Aftermath,
    Completion,
    Profile,
    Script,
    TrainingStep,
    Upload,
)
from core.drift.codes import CODE_ORDER, code_spec
from core.sandbox.catalog import OSTRIS_TRAINER, OSTRIS_TRAINER_VERSION

DEMO_EMAIL_DOMAIN = "example.com"
BLURRY_RADIUS = 4.0  # px at 1280 px: a shaky, out-of-focus phone photo


@dataclass(frozen=True)
class Persona:
    """A demo user, the situation they are in, and what the drift engine must say."""

    key: str
    user_id: str
    email: str
    situation: str
    expected_codes: tuple[str, ...]

    @property
    def reported_codes(self) -> tuple[str, ...]:
        """The expected codes in the order the drift engine reports them: most serious
        first, then the vocabulary's order."""
        return tuple(
            sorted(
                self.expected_codes,
                key=lambda code: (code_spec(code).severity.rank, CODE_ORDER[code]),
            )
        )


@dataclass(frozen=True)
class Cast:
    """A persona with the profile and history that put them in their situation."""

    persona: Persona
    profile: Profile
    script: Script


def _email(profile: Profile) -> str:
    return f"{profile.first_name}.{profile.last_name}@{DEMO_EMAIL_DOMAIN}".lower()


def _cast(
    key: str,
    user_id: str,
    situation: str,
    expected: tuple[str, ...],
    profile: Profile,
    script: Script,
) -> Cast:
    return Cast(Persona(key, user_id, _email(profile), situation, expected), profile, script)


def _good(count: int, first_shot: int = 0) -> Upload:
    return Upload(count=count, first_shot=first_shot)


CAST: tuple[Cast, ...] = (
    # Healthy: one good training (16 sharp photos, 1280 px long and 1024+ px short side),
    # the row exactly as the app wrote it.
    _cast(
        "healthy_single",
        "e7c6c4f6-526e-4a3f-8db1-cf45430b93d6",
        "Healthy: one good training, generating from its version.",
        (),
        Profile("Maya", "Okafor", "sselfie-studio", "woman", "Black", look=1),
        Script((TrainingStep(_good(16), generations=3),)),
    ),
    # Healthy: retrained on more good photos (the same 15 plus 3 new: no shrink, and the
    # same adaptive parameters); the row holds the latest version, its weights and the
    # trained trigger.
    _cast(
        "healthy_retrained",
        "45038279",
        "Healthy: retrained well; the row is on the newest of two good versions.",
        (),
        Profile("Lena", "Fischer", "sselfie-studio", "woman", "White", look=2, legacy_auth=True),
        Script((TrainingStep(_good(15)), TrainingStep(_good(18), generations=2))),
    ),
    # STALE_VERSION: three succeeded trainings, the row `completed` on the FIRST hash, which
    # is a version of its model but not the latest, and the latest came from this user's
    # training. Not TRIGGER/WEIGHTS: the row's weights are the first training's own, and
    # the trigger never changed. Not DATASET_*/PARAMS: the last two uploads are the same
    # 15 photos (the user tried again with the same selfies).
    _cast(
        "stale_version",
        "ae1bb651-2fa4-4aa3-aedc-ddc391f0f5ef",
        "Stale version: retrained twice, still generating from the first version.",
        ("STALE_VERSION",),
        Profile("Sofia", "Ramirez", "sselfie-studio", "woman", "Latina", look=3),
        Script(
            (
                TrainingStep(_good(15)),
                TrainingStep(
                    _good(15, first_shot=15), completion=Completion.KEPT_PREVIOUS, generations=1
                ),
                TrainingStep(
                    _good(15, first_shot=15), completion=Completion.KEPT_PREVIOUS, generations=2
                ),
            )
        ),
    ),
    # VERSION_FORMAT: `owner/name:hash` stored. The hash after the colon is the model's
    # latest version, so after normalising nothing else is wrong.
    _cast(
        "version_with_model",
        "4c0dd5ec-7d60-42f1-bd42-85f029942534",
        "Version stored as owner/name:hash instead of the bare hash.",
        ("VERSION_FORMAT",),
        Profile("Priya", "Natarajan", "sselfie-studio", "woman", "Asian", look=4),
        Script((TrainingStep(_good(15), completion=Completion.FULL_VERSION, generations=2),)),
    ),
    # VERSION_NOT_IN_MODEL: the trainer's hash (f463fbfc...) is well-formed 64 hex, so not
    # VERSION_FORMAT, and it is no version of the user's model, so not STALE either.
    # Trigger and weights equal the (only) training's, so the fallback readings agree.
    _cast(
        "trainer_hash",
        "d981bb39-5569-48b8-965d-f885ad60d8fd",
        "The trainer's version hash stored instead of the new LoRA version.",
        ("VERSION_NOT_IN_MODEL",),
        Profile("Hannah", "Kowalski", "one-time-session", "woman", None, look=5),
        Script((TrainingStep(_good(15), completion=Completion.TRAINER_VERSION, generations=1),)),
    ),
    # TRIGGER_WORD_MISMATCH: the row's trigger is not the `input.trigger_word` of the
    # training that produced the stored (correct, latest) version. Images made since have
    # no likeness: the prompt carries a word the LoRA never learned.
    _cast(
        "trigger_overwritten",
        "38172604",
        "Trigger word overwritten by a new one the model never learned.",
        ("TRIGGER_WORD_MISMATCH",),
        Profile(
            "Amara", "Haddad", "sselfie-studio", "woman", "Middle Eastern", look=6, legacy_auth=True
        ),
        Script(
            (TrainingStep(_good(15), generations=1),),
            aftermath=Aftermath.TRIGGER_OVERWRITTEN,
            generations_after=2,
        ),
    ),
    # MODEL_ID_MISSING: `replicate_model_id` NULL while the row is `completed` with a
    # `training_id`. Version checks need a model id, so they are not reported on top; the
    # version, weights and trigger are otherwise right (and generation still works).
    _cast(
        "model_id_missing",
        "eaf61ffe-e56e-4961-a22a-3d2d75c55179",
        "replicate_model_id is NULL although the row is completed and has a training.",
        ("MODEL_ID_MISSING",),
        Profile("Jordan", "Blake", "content-creator-studio", "non-binary", "Mixed", look=7),
        Script(
            (TrainingStep(_good(15), generations=1),),
            aftermath=Aftermath.MODEL_ID_CLEARED,
            generations_after=1,
        ),
    ),
    # MODEL_NOT_FOUND: the model (and its versions) was deleted on Replicate, so it answers
    # 404. The version cannot be checked against a model that is gone; the trainings still
    # exist, and their trigger and weights match the row.
    _cast(
        "model_deleted",
        "51ac1d91-cff0-4edc-9ac4-cf19991b60bd",
        "The user's model was deleted on Replicate; the row still points at it.",
        ("MODEL_NOT_FOUND",),
        Profile("Chloe", "Martin", "sselfie-studio", "woman", "White", look=8),
        Script((TrainingStep(_good(15)),), aftermath=Aftermath.MODEL_DELETED, generations_after=1),
    ),
    # VERSION_LOST: the retrain failed; the app had reset the row, so version and weights
    # are NULL and the row is `failed`, while the first training's version still exists.
    # Not STATUS_OUT_OF_SYNC: Replicate says `failed` too. DATASET_*/PARAMS compare
    # succeeded trainings only, and there is just one.
    _cast(
        "version_lost",
        "41930527",
        "A failed retrain wiped the stored version; the old one still exists.",
        ("VERSION_LOST",),
        Profile("Grace", "Mensah", "sselfie-studio", "woman", "Black", look=9, legacy_auth=True),
        Script(
            (
                TrainingStep(_good(15)),
                TrainingStep(_good(12, first_shot=3), fails=True, generations=0),
            )
        ),
    ),
    # STATUS_OUT_OF_SYNC: the row says `training`, Replicate says `succeeded` (nobody polled).
    # Not VERSION_LOST: that needs a `failed`/`pending` row.
    _cast(
        "stuck_training",
        "c9b081b7-d8e6-4e54-af91-8a042ee24d60",
        "Row stuck in 'training' although the training succeeded on Replicate.",
        ("STATUS_OUT_OF_SYNC",),
        Profile("Emily", "Nguyen", "sselfie-studio", "woman", "Asian", look=10),
        Script((TrainingStep(_good(15), completion=Completion.NEVER_POLLED, generations=0),)),
    ),
    # WEIGHTS_URL_MISMATCH: the weights URL was rebuilt as replicate.delivery/pbxt/{hash}/
    # flux-lora.tar, which is not the training's `output.weights`. Images made since are
    # degraded (hf_lora names other weights).
    _cast(
        "weights_rebuilt",
        "b6c07e0c-1ddb-4d79-ad12-90b05ce9676a",
        "lora_weights_url replaced by a URL built from the hash (pbxt).",
        ("WEIGHTS_URL_MISMATCH",),
        Profile("Isabella", "Rossi", "sselfie-studio", "woman", "White", look=11, lora_scale=0.9),
        Script(
            (TrainingStep(_good(15), generations=1),),
            aftermath=Aftermath.WEIGHTS_REBUILT,
            generations_after=2,
        ),
    ),
    # DUPLICATE_MODELS: the retrain went to a second destination model. The row follows
    # the new model and its only version, so not STALE; the photos are the same 15.
    _cast(
        "two_models",
        "6670a6b0-99fb-404f-8960-cafba0b689cc",
        "Retraining created a second model instead of a new version.",
        ("DUPLICATE_MODELS",),
        Profile("Olivia", "Bennett", "content-creator-studio", "woman", "White", look=12),
        Script(
            (
                TrainingStep(_good(15), generations=1),
                TrainingStep(_good(15), destination_name="{base}-v2", generations=2),
            )
        ),
    ),
    # RETRAIN_REGRESSED (here and in the squeezed retrain): the demo world's past retrain
    # reviews (core.demo.past_retrains) judged the retrain worse.
    # DATASET_SHRANK: 5 photos, fewer than 10 and 69% fewer than 16. DATASET_DEGRADED: all
    # 5 fail the blur check where none did before. PARAMS_CHANGED is unavoidable: the
    # app scales steps/rank/alpha/repeats with the count (16 -> 1400/48/48/20, 5 -> 1200/32/32/10).
    _cast(
        "blurry_retrain",
        "fe69f79c-312f-45fa-b723-9711433f48b4",
        "Retrained on 5 blurry photos after a good first training.",
        ("DATASET_SHRANK", "DATASET_DEGRADED", "PARAMS_CHANGED", "RETRAIN_REGRESSED"),
        Profile("Zoe", "Thompson", "sselfie-studio", "woman", "Mixed", look=13),
        Script(
            (
                TrainingStep(_good(16)),
                TrainingStep(Upload(count=5, first_shot=16, blur=BLURRY_RADIUS), generations=2),
            )
        ),
    ),
    # DATASET_DEGRADED: the same 16 shots squeezed to 600 px at JPEG quality 55: median
    # short side 1024 -> 480 (down 53% and under 1024). Same count, so not SHRANK and the
    # same adaptive parameters.
    _cast(
        "squeezed_retrain",
        "29384710",
        "Retrained on photos the browser squeezed to 600 px at JPEG quality 0.55.",
        ("DATASET_DEGRADED", "RETRAIN_REGRESSED"),
        Profile(
            "Nadia", "Petrova", "one-time-session", "woman", "White", look=14, legacy_auth=True
        ),
        Script(
            (
                TrainingStep(_good(16)),
                TrainingStep(
                    Upload(
                        count=16, long_side=SQUEEZED_LONG_SIDE, jpeg_quality=SQUEEZED_JPEG_QUALITY
                    ),
                    generations=2,
                ),
            )
        ),
    ),
    # TRAINER_CHANGED: ostris/flux-dev-lora-trainer first, replicate/fast-flux-trainer
    # next. The app sent the same input both times (same 15 photos, same parameters), so
    # not PARAMS_CHANGED: inputs are compared as sent; that the trainers read them
    # differently is what TRAINER_CHANGED says.
    _cast(
        "trainer_changed",
        "27a0ca15-06be-4a6b-90a8-cd5fad0fb698",
        "Trainer changed between trainings (ostris, then fast-flux-trainer).",
        ("TRAINER_CHANGED",),
        Profile("Marcus", "Johnson", "sselfie-studio", "man", "Black", look=15),
        Script(
            (
                TrainingStep(
                    _good(15), trainer=OSTRIS_TRAINER, trainer_version=OSTRIS_TRAINER_VERSION
                ),
                TrainingStep(_good(15), generations=2),
            )
        ),
    ),
    # PARAMS_CHANGED: 18 photos, then 14 of them: the app's adaptive table moves rank and
    # alpha 48 -> 40 and repeats 20 -> 18. 14 is 22% fewer than 18 and at least 10, so not
    # DATASET_SHRANK; the photos are the same quality, so not DATASET_DEGRADED.
    _cast(
        "params_changed",
        "dd51daeb-4a5e-40e9-a5c8-4e793681c253",
        "Training parameters changed between trainings (18 photos, then 14).",
        ("PARAMS_CHANGED",),
        Profile("Daniel", "Kim", "sselfie-studio", "man", "Asian", look=16),
        Script((TrainingStep(_good(18)), TrainingStep(_good(14), generations=2))),
    ),
    # Healthy: signed up, never trained; no `user_models` row, so nothing to find.
    _cast(
        "no_model_yet",
        "50218836",
        "Signed up but never trained: no model row.",
        (),
        Profile("Aisha", "Bello", "sselfie-studio", "woman", "Black", look=17, legacy_auth=True),
        Script(),
    ),
)

PERSONAS: tuple[Persona, ...] = tuple(member.persona for member in CAST)
