"""Every heading and sentence of the report, in English and Spanish.

The people who asked for this project write Spanish; `report_lang` picks the language. A
test checks that both languages define the same keys with the same format fields, so a new
sentence cannot be added in one language only.
"""
from __future__ import annotations

LANGUAGES = ("en", "es")

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "AG News fine-tuning report",
        "h_summary": "Summary", "h_data": "Data", "h_process": "Process",
        "h_curves": "Training curves", "h_evaluation": "Evaluation", "h_errors": "Errors",
        "h_conclusions": "Conclusions", "h_limitations": "Limitations",
        "h_reproduce": "Reproduce",
        "metric": "metric", "value": "value", "parameter": "parameter", "split": "split",
        "total": "total", "epoch": "epoch", "class": "class", "support": "support",
        "step": "step", "run_id": "run id", "text": "text", "true": "true",
        "predicted": "predicted", "confidence": "confidence",
        "summary": "{model} fine-tuned on {train_rows} rows for {epochs} epoch(s), keeping the "
                   "weights of epoch {best}, reaches test accuracy {acc} and weighted F1 {f1} on "
                   "{test_rows} test rows.",
        "data": "Source: {source}. Rows sampled with seed {seed}, stratified by class; validation "
                "rows come from the train split and never overlap the train rows. {overlap} "
                "test text(s) also occur among the train rows. {truncated} of the texts were "
                "truncated at {max_length} tokens.",
        "process": "{model} with a new 4-way classification head, AdamW at peak learning rate "
                   "{lr} decaying linearly to 0, batch {batch}, {epochs} epoch(s); the kept "
                   "epoch is {best} ({rule}). Every parameter of this run:",
        "rule_best": "the last, unless an earlier one is significantly more accurate on the "
                     "validation rows (McNemar)", "rule_last": "the last epoch, select_best=false",
        "compute": "Trained on {device} in {train}, scored in {score} ({reason}).",
        "scorer": "Evaluate, predict, monitor and the served model score with {scorer}: "
                  "{reason}.",
        "curves": "train_* metrics are measured after each epoch in eval mode on the training "
                  "rows (a fixed sample of at most 500), as val_* are on the validation rows.",
        "errors": "The {n} wrong predictions the model was most confident of ({wrong} of "
                  "{total} test texts are wrong):",
        "no_errors": "The model made no mistake on the test rows.",
        "cap_balance": "Class balance per split", "cap_words": "Text length in words",
        "cap_tokens": "Text length in tokens, max_length marked",
        "cap_loss": "Loss: per optimiser step and per epoch, train vs validation",
        "cap_metrics": "Accuracy, F1, precision and recall per epoch; the kept epoch dashed",
        "cap_lr": "Learning-rate schedule",
        "cap_confusion": "Confusion matrix on the test split",
        "cap_final": "Final test metrics", "cap_per_class": "Per-class precision, recall and F1",
        "cap_roc": "One-vs-rest ROC and precision-recall curves",
        "cap_reliability": "Reliability diagram", "cap_confidence": "Confidence of correct "
                                                                     "vs wrong predictions",
        "fit": "At the kept epoch {best}, train accuracy is {train_acc} and validation accuracy "
               "{val_acc} (gap {gap}); validation minus train loss is {loss_gap}. Over the epochs "
               "the accuracy gap went from {first_gap} to {gap} ({trend}).",
        "trend_widening": "widening", "trend_narrowing": "narrowing", "trend_flat": "one epoch",
        "overfit": "The gap exceeds {threshold}: the model overfits the training rows.",
        "overfit_benign": "The gap exceeds {threshold}: the model fits its training rows better "
                          "than new ones, but validation loss is still falling, so the extra "
                          "epochs have not hurt it yet.",
        "underfit": "Train accuracy is below {threshold}: the model underfits, it has not learned "
                    "the training rows yet.",
        "good_fit": "The gap is within {threshold} and train accuracy is above {under}: no sign "
                    "of over- or underfitting.",
        "converging": "Validation loss was still falling at the last epoch ({prev} → {last}): "
                      "training had not converged; more epochs or data would likely help.",
        "converged": "Validation loss stopped falling at the last epoch ({prev} → {last}): "
                     "training has converged for this data; more epochs would not help.",
        "one_epoch": "Only one epoch ran, so convergence cannot be judged from the curve.",
        "confused": "Most confused pairs: {pairs}.",
        "confused_pair": "{true} read as {pred} {n} times",
        "weakest": "The weakest class is {name} with F1 {f1} "
                   "(the strongest: {best} with {best_f1}).",
        "calibrated": "Calibration: ECE {ece} (below {good}): the scores can be read as "
                      "probabilities, e.g. for thresholds or abstaining on low confidence.",
        "miscalibrated": "Calibration: ECE {ece} (above {good}); the model is {direction} (mean "
                         "confidence {conf} vs accuracy {acc}): treat its scores as a ranking, "
                         "not as probabilities, or recalibrate before using thresholds.",
        "overconfident": "overconfident", "underconfident": "underconfident",
        "previous": "Against the previous run of this experiment ({run}): {deltas}.",
        "no_previous": "This is the first evaluated run of this experiment: nothing to compare.",
        "lim_sample": "Trained on {train_rows} of the {pool_rows} rows the source's train split "
                      "holds; accuracy grows with more training rows.",
        "lim_test": "With {n} test rows, test accuracy is known only to within {low} to "
                    "{high} (95% Wilson interval).",
        "interval": "95% interval",
        "lim_epochs": "{epochs} epoch(s) of training: {convergence}",
        "lim_epochs_more": "validation loss was still falling, so this is not the model's ceiling.",
        "lim_epochs_done": "validation loss had stopped falling.",
        "lim_truncation": "{share} of the texts were cut at max_length={max_length} tokens.",
        "reproduce": "This exact run, from the project folder:",
        "verdict": "Verdict:",
        "h_registry": "Model registry",
        "registry_first": "Registered as {model} version {version}, the first version to pass "
                          "the gate (test_accuracy ≥ {min_acc}, test_f1 ≥ {min_f1}): it is now "
                          "`champion`.",
        "registry_champion": "Registered as {model} version {version}, now `champion`. "
                             "{paired} {verdict}",
        "registry_challenger": "Registered as {model} version {version} with alias "
                               "`challenger`; version {champion} stays `champion`. {paired} "
                               "{verdict}",
        "paired": "Both this model and the champion (version {champion}), re-scored here, "
                  "answered the same {rows} test rows. They disagree on {disagree}: this model "
                  "is right on {only_candidate} of them, the champion on {only_champion}.",
        "verdict_better": "McNemar's exact one-sided test gives p = {p} < {alpha}: this model is "
                          "more often right.",
        "verdict_indistinguishable": "McNemar's exact one-sided test gives p = {p} ≥ {alpha}: "
                                     "the two could not be told apart.",
        "verdict_worse": "McNemar's exact one-sided test gives p = {p} ≥ {alpha}, and the same "
                         "test the other way round finds the champion better.",
        "verdict_not_worse": "Tango's one-sided score test of a loss of {margin} points or more "
                             "gives p = {p} < {alpha}: this model is not worse by more than "
                             "that.",
        "verdict_could_be_worse": "Tango's one-sided score test of a loss of {margin} points or "
                                  "more gives p = {p} ≥ {alpha}: it could be worse by more than "
                                  "that.",
        "registry_gate": "Not registered in {model}: the model misses the gate ({reasons}).",
        "registry_already": "This model is already {model} version {version}; the registry was "
                            "left as it was.",
        "model_card": "Its model card (intended use, limitations, data, settings, and the test "
                      "metrics with their intervals) travels with the version: `{uri}`.",
        "candidate": "this model", "champion": "champion (re-scored)",
        "h_search": "Search",
        "search": "This model is the best of a hyperparameter search (Optuna study {study}): "
                  "{trials} trial(s) ran, {complete} completed, {pruned} were stopped early by "
                  "the median pruner and {failed} failed. Trials were ranked by the validation "
                  "loss of the epoch they kept; the test rows were scored once, for the chosen "
                  "trial {best} (validation loss {val_loss}, validation accuracy {val_acc}).",
        "search_params": "The chosen trial's values:",
        "cap_search_history": "Validation loss of each trial and the best so far",
        "cap_search_importances": "How much each parameter explains the validation loss",
        "cap_search_parallel": "Each completed trial's parameters against its validation loss",
        "cap_search_val_loss": "Validation loss per epoch of every trial",
    },
    "es": {
        "title": "Informe del ajuste fino con AG News",
        "h_summary": "Resumen", "h_data": "Datos", "h_process": "Proceso",
        "h_curves": "Curvas de entrenamiento", "h_evaluation": "Evaluación", "h_errors": "Errores",
        "h_conclusions": "Conclusiones", "h_limitations": "Limitaciones",
        "h_reproduce": "Reproducir",
        "metric": "métrica", "value": "valor", "parameter": "parámetro", "split": "partición",
        "total": "total", "epoch": "época", "class": "clase", "support": "soporte",
        "step": "paso", "run_id": "id de la ejecución", "text": "texto", "true": "real",
        "predicted": "predicha", "confidence": "confianza",
        "summary": "{model}, ajustado con {train_rows} filas durante {epochs} época(s) y "
                   "conservando los pesos de la época {best}, alcanza una exactitud de {acc} y un "
                   "F1 ponderado de {f1} en {test_rows} filas de test.",
        "data": "Origen: {source}. Filas muestreadas con semilla {seed}, estratificadas por clase; "
                "las filas de validación salen de la partición de entrenamiento y nunca se "
                "solapan con las de entrenamiento. {overlap} texto(s) de test aparecen también "
                "entre las filas de entrenamiento. {truncated} de los textos se truncaron a "
                "{max_length} tokens.",
        "process": "{model} con una nueva cabeza de clasificación de 4 clases, AdamW con tasa de "
                   "aprendizaje máxima {lr} que decae linealmente a 0, lote de {batch}, {epochs} "
                   "época(s); la época conservada es la {best} ({rule}). Todos los parámetros de "
                   "esta ejecución:",
        "rule_best": "la última, salvo que una anterior acierte significativamente más en "
                     "validación (McNemar)", "rule_last": "la última, select_best=false",
        "compute": "Entrenado en {device} en {train}, evaluado en {score} ({reason}).",
        "scorer": "Evaluate, predict, monitor y el modelo servido puntúan con {scorer}: "
                  "{reason}.",
        "curves": "Las métricas train_* se miden al final de cada época en modo evaluación sobre "
                  "las filas de entrenamiento (una muestra fija de hasta 500), igual que val_* "
                  "sobre las de validación.",
        "errors": "Las {n} predicciones erróneas de las que el modelo estaba más seguro ({wrong} "
                  "de {total} textos de test son erróneos):",
        "no_errors": "El modelo no cometió ningún error en las filas de test.",
        "cap_balance": "Balance de clases por partición",
        "cap_words": "Longitud de los textos en palabras",
        "cap_tokens": "Longitud de los textos en tokens, con max_length marcado",
        "cap_loss": "Pérdida: por paso del optimizador y por época, entrenamiento frente a "
                    "validación",
        "cap_metrics": "Exactitud, F1, precisión y exhaustividad por época; la época conservada "
                       "en discontinua",
        "cap_lr": "Programa de la tasa de aprendizaje",
        "cap_confusion": "Matriz de confusión en la partición de test",
        "cap_final": "Métricas finales de test",
        "cap_per_class": "Precisión, exhaustividad y F1 por clase",
        "cap_roc": "Curvas ROC y de precisión-exhaustividad, una contra el resto",
        "cap_reliability": "Diagrama de fiabilidad",
        "cap_confidence": "Confianza de las predicciones correctas frente a las erróneas",
        "fit": "En la época conservada {best}, la exactitud de entrenamiento es {train_acc} y la "
               "de validación {val_acc} (diferencia {gap}); la pérdida de validación menos la de "
               "entrenamiento es {loss_gap}. A lo largo de las épocas la diferencia de exactitud "
               "pasó de {first_gap} a {gap} ({trend}).",
        "trend_widening": "creciendo", "trend_narrowing": "reduciéndose",
        "trend_flat": "una sola época",
        "overfit": "La diferencia supera {threshold}: el modelo sobreajusta las filas de "
                   "entrenamiento.",
        "overfit_benign": "La diferencia supera {threshold}: el modelo se ajusta mejor a sus "
                          "filas de entrenamiento que a filas nuevas, pero la pérdida de "
                          "validación sigue bajando, así que las épocas extra aún no lo han "
                          "perjudicado.",
        "underfit": "La exactitud de entrenamiento está por debajo de {threshold}: el modelo "
                    "subajusta, aún no ha aprendido las filas de entrenamiento.",
        "good_fit": "La diferencia no supera {threshold} y la exactitud de entrenamiento está por "
                    "encima de {under}: no hay indicios de sobreajuste ni de subajuste.",
        "converging": "La pérdida de validación aún bajaba en la última época ({prev} → {last}): "
                      "el entrenamiento no había convergido; más épocas o más datos "
                      "probablemente ayudarían.",
        "converged": "La pérdida de validación dejó de bajar en la última época ({prev} → "
                     "{last}): el entrenamiento ha convergido para estos datos; más épocas no "
                     "ayudarían.",
        "one_epoch": "Solo se entrenó una época: la convergencia no se puede juzgar por la curva.",
        "confused": "Pares más confundidos: {pairs}.",
        "confused_pair": "{true} leída como {pred} {n} veces",
        "weakest": "La clase más débil es {name} con F1 {f1} (la más fuerte: {best} con "
                   "{best_f1}).",
        "calibrated": "Calibración: ECE {ece} (por debajo de {good}): las puntuaciones se pueden "
                      "leer como probabilidades, por ejemplo para umbrales o para abstenerse "
                      "cuando la confianza es baja.",
        "miscalibrated": "Calibración: ECE {ece} (por encima de {good}); el modelo es "
                         "{direction} (confianza media {conf} frente a exactitud {acc}): use sus "
                         "puntuaciones como un orden, no como probabilidades, o recalíbrelo antes "
                         "de usar umbrales.",
        "overconfident": "demasiado confiado", "underconfident": "poco confiado",
        "previous": "Frente a la ejecución anterior de este experimento ({run}): {deltas}.",
        "no_previous": "Es la primera ejecución evaluada de este experimento: no hay con qué "
                       "comparar.",
        "lim_sample": "Entrenado con {train_rows} de las {pool_rows} filas de la partición de "
                      "entrenamiento del origen; la exactitud crece con más filas.",
        "lim_test": "Con {n} filas de test, la exactitud solo se sabe entre {low} y {high} "
                    "(intervalo de Wilson del 95%).",
        "interval": "intervalo del 95%",
        "lim_epochs": "{epochs} época(s) de entrenamiento: {convergence}",
        "lim_epochs_more": "la pérdida de validación aún bajaba, así que este no es el techo del "
                           "modelo.",
        "lim_epochs_done": "la pérdida de validación había dejado de bajar.",
        "lim_truncation": "{share} de los textos se cortaron en max_length={max_length} tokens.",
        "reproduce": "Esta misma ejecución, desde la carpeta del proyecto:",
        "verdict": "Veredicto:",
        "h_registry": "Registro de modelos",
        "registry_first": "Registrado como {model} versión {version}, la primera versión que "
                          "supera el umbral (test_accuracy ≥ {min_acc}, test_f1 ≥ {min_f1}): "
                          "ahora es `champion`.",
        "registry_champion": "Registrado como {model} versión {version}, ahora `champion`. "
                             "{paired} {verdict}",
        "registry_challenger": "Registrado como {model} versión {version} con el alias "
                               "`challenger`; la versión {champion} sigue siendo `champion`. "
                               "{paired} {verdict}",
        "paired": "Este modelo y el campeón (versión {champion}), evaluado de nuevo aquí, "
                  "respondieron las mismas {rows} filas de prueba. Discrepan en {disagree}: "
                  "este modelo acierta {only_candidate} de ellas y el campeón {only_champion}.",
        "verdict_better": "La prueba exacta de McNemar, unilateral, da p = {p} < {alpha}: este "
                          "modelo acierta más a menudo.",
        "verdict_indistinguishable": "La prueba exacta de McNemar, unilateral, da p = {p} ≥ "
                                     "{alpha}: no se pueden distinguir.",
        "verdict_worse": "La prueba exacta de McNemar, unilateral, da p = {p} ≥ {alpha}, y la "
                         "misma prueba en sentido contrario halla mejor al campeón.",
        "verdict_not_worse": "La prueba de puntuación de Tango, unilateral, de una pérdida de "
                             "{margin} puntos o más da p = {p} < {alpha}: este modelo no es peor "
                             "en más que eso.",
        "verdict_could_be_worse": "La prueba de puntuación de Tango, unilateral, de una pérdida "
                                  "de {margin} puntos o más da p = {p} ≥ {alpha}: podría ser peor "
                                  "en más que eso.",
        "registry_gate": "No registrado en {model}: el modelo no supera el umbral ({reasons}).",
        "registry_already": "Este modelo ya es {model} versión {version}; el registro no se "
                            "modificó.",
        "model_card": "Su ficha del modelo (uso previsto, limitaciones, datos, ajustes y las "
                      "métricas de prueba con sus intervalos) viaja con la versión: `{uri}`.",
        "candidate": "este modelo", "champion": "campeón (evaluado de nuevo)",
        "h_search": "Búsqueda",
        "search": "Este modelo es el mejor de una búsqueda de hiperparámetros (estudio de Optuna "
                  "{study}): se lanzaron {trials} prueba(s); {complete} terminaron, el podador "
                  "por mediana detuvo antes {pruned} y {failed} fallaron. Las pruebas se "
                  "ordenaron por la pérdida de validación de la época que conservaron; las filas "
                  "de prueba se evaluaron una sola vez, para la prueba elegida {best} (pérdida "
                  "de validación {val_loss}, exactitud de validación {val_acc}).",
        "search_params": "Los valores de la prueba elegida:",
        "cap_search_history": "Pérdida de validación de cada prueba y la mejor hasta entonces",
        "cap_search_importances": "Cuánto explica cada parámetro la pérdida de validación",
        "cap_search_parallel": "Parámetros de cada prueba terminada frente a su pérdida de "
                               "validación",
        "cap_search_val_loss": "Pérdida de validación por época de cada prueba",
    },
}


def t(lang: str, key: str, **values) -> str:
    """The sentence `key` in `lang`, with `values` filled in."""
    return TEXT[lang][key].format(**values)
